# parkwatch server image: ingester, API (with the built-in web dashboard) and tools.
#   docker build -t parkwatch:local .
#   docker run --rm parkwatch:local parkwatch --help
# docker-compose.yml builds and runs it; see docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs: no tests, no local data, no .git.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY parkwatch ./parkwatch
COPY contract ./contract
COPY settings ./settings
COPY mqttlink ./mqttlink
COPY storage ./storage
COPY analytics ./analytics
COPY edge_agent ./edge_agent
COPY ingest ./ingest
COPY api ./api
COPY firmware_sim ./firmware_sim
COPY dashboards ./dashboards
COPY surveys ./surveys
COPY constraints.txt ./
# The lock decides every version, as in the README's install. gcc builds the ingester's compiled
# line protocol loop (ingest/_lineformat.c) and is removed again in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -c constraints.txt ".[server]" \
    && (cd / && python -c "import ingest._lineformat") \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /src

COPY deploy/mosquitto/broker_auth.py /usr/local/share/parkwatch/broker_auth.py

# An unprivileged user owning the state directory (registry, ingest spool); named volumes
# mounted there inherit the ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/parkwatch --shell /usr/sbin/nologin parkwatch \
    && mkdir -p /var/lib/parkwatch/spool /var/lib/parkwatch/grafana /etc/parkwatch \
    && chown -R parkwatch:parkwatch /var/lib/parkwatch
WORKDIR /var/lib/parkwatch
USER parkwatch

CMD ["parkwatch", "--help"]
