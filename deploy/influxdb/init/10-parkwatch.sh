#!/bin/bash
# parkwatch on InfluxDB 2.x: run by the influxdb image on the first start of an empty data
# volume (mounted at /docker-entrypoint-initdb.d), after DOCKER_INFLUXDB_INIT_* created the org,
# the bucket, its retention and the operator (admin) token. Safe to run again by hand (the
# running server listens on 8086, the first-start setup on a port of its own):
#   docker compose exec -e INFLUX_HOST=http://localhost:8086 influxdb \
#     bash /docker-entrypoint-initdb.d/10-parkwatch.sh
#
# 1. An explicit DBRP mapping: InfluxQL database "<bucket>", retention policy "autogen" -> the
#    bucket. (InfluxDB >= 2.4 also maps it virtually; the explicit mapping works on every 2.x.)
# 2. Two scoped API tokens, written where the other containers read them (never to .env):
#    /run/parkwatch/influxdb-write/token  read+write on the bucket, for the ingesters;
#    /run/parkwatch/influxdb-read/token   read on the bucket, for the API and Grafana.
#    InfluxDB 2.x cannot create a token with a chosen value, hence the files.
set -euo pipefail

org="${DOCKER_INFLUXDB_INIT_ORG:?}"
bucket="${DOCKER_INFLUXDB_INIT_BUCKET:?}"
admin_token="${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN:?}"
export INFLUX_TOKEN="$admin_token" INFLUX_ORG="$org"

bucket_id="$(influx bucket list --name "$bucket" --hide-headers | awk 'NR == 1 { print $1 }')"
if [ -z "$bucket_id" ]; then
  echo "parkwatch init: bucket $bucket not found in org $org" >&2
  exit 1
fi

if influx v1 dbrp list --db "$bucket" --hide-headers | grep -q .; then
  echo "parkwatch init: DBRP mapping for database $bucket exists"
else
  influx v1 dbrp create --db "$bucket" --rp autogen --bucket-id "$bucket_id" --default
fi

new_token() {
  # $1: description; remaining arguments: permissions. Prints only the token.
  local description="$1"
  shift
  influx auth create --description "$description" "$@" --json \
    | sed -n 's/^[[:space:]]*"token":[[:space:]]*"\([^"]*\)".*/\1/p'
}

write_token_file() {
  # $1: directory (a volume shared with the services that need it), $2: the token.
  if [ -z "$2" ]; then
    echo "parkwatch init: could not create a token for $1" >&2
    exit 1
  fi
  mkdir -p "$1"
  umask 022
  printf '%s' "$2" > "$1/token.tmp"
  mv "$1/token.tmp" "$1/token"
}

write_token_file /run/parkwatch/influxdb-write \
  "$(new_token parkwatch-ingest --write-bucket "$bucket_id" --read-bucket "$bucket_id")"
write_token_file /run/parkwatch/influxdb-read \
  "$(new_token parkwatch-read --read-bucket "$bucket_id")"
echo "parkwatch init: tokens written for the ingesters (write) and for the API and Grafana (read)"
