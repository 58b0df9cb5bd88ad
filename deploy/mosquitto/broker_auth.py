"""Write Mosquitto's password file and ACL from the API's gateway registry (compose job ``broker-auth``).

Before writing, it makes sure the ingesters' service accounts exist in the registry with the
password given in ``MQTT_INGEST_PASSWORD``, so that a fresh deployment's ingesters can connect
before anyone has called the API: ``[provisioning] ingest_username`` (the broker healthcheck's
login) and one account per ingester named in ``MQTT_INGEST_ACCOUNTS`` (space- or comma-separated,
each ``<ingest_username>-<n>``). The broker replaces each client id with the username
(``use_username_as_clientid`` in mosquitto.conf), so every ingester needs an account of its own. The files are then written
by ``parkwatch api mosquitto-files`` and, with ``--owner``, handed to the broker's user (the
eclipse-mosquitto image runs as uid 1883 and must be able to read the 0600 password file).

Usage (inside the parkwatch image, settings from ``PARKWATCH_CONFIG``)::

    MQTT_INGEST_PASSWORD=... MQTT_INGEST_ACCOUNTS="parkwatch-ingest-1 parkwatch-ingest-2" \\
        python broker_auth.py --out-dir /broker-auth --owner 1883:1883

Reload the broker afterwards: ``docker compose kill -s SIGHUP mosquitto``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

MIN_PASSWORD_LENGTH = 16


def ingest_account_names(ingest_username: str, env: Mapping[str, str]) -> list[str]:
    """``ingest_username`` and the per-ingester accounts of ``MQTT_INGEST_ACCOUNTS``.

    Raises:
        SystemExit: a name is not ``<ingest_username>-<n>``.
    """
    pattern = re.compile(re.escape(ingest_username) + r"-[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
    names = [ingest_username]
    for name in re.split(r"[\s,]+", env.get("MQTT_INGEST_ACCOUNTS", "").strip()):
        if not name:
            continue
        if pattern.fullmatch(name) is None:
            raise SystemExit(
                f"broker-auth: MQTT_INGEST_ACCOUNTS names {name[:80]!r}: name each ingester's account "
                f"{ingest_username}-<n> (e.g. {ingest_username}-1), the same as its "
                f"PARKWATCH_BROKER__USERNAME in docker-compose.yml"
            )
        if name not in names:
            names.append(name)
    return names


def ensure_ingest_accounts(env: Mapping[str, str]) -> list[str]:
    """Register (or re-key) the ingesters' broker accounts; return their usernames.

    Raises:
        SystemExit: the password is missing or too short, or an account name is invalid.
    """
    from api import mosquitto
    from api.registry import Registry
    from settings.api import ApiSettings
    from settings.loader import load_settings

    password = env.get("MQTT_INGEST_PASSWORD", "")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(
            f"broker-auth: set MQTT_INGEST_PASSWORD in .env to a random string of at least "
            f"{MIN_PASSWORD_LENGTH} characters (e.g. `openssl rand -base64 24`)"
        )
    settings = load_settings(ApiSettings, env=env)
    usernames = ingest_account_names(settings.provisioning.ingest_username, env)
    registry = Registry(settings.api.registry_path)
    try:
        current = dict(registry.services())
        for username in usernames:
            # Re-hash only when the password changed: a fresh salt would rewrite the file each run.
            if username not in current or not mosquitto.verify_password(password, current[username]):
                registry.set_service(
                    username=username,
                    password_hash=mosquitto.hash_password(
                        password, iterations=settings.provisioning.pbkdf2_iterations
                    ),
                )
    finally:
        registry.close()
    _keep_directory_owner(Path(settings.api.registry_path))
    return usernames


def _keep_directory_owner(db_path: Path) -> None:
    """Give the registry files the owner of their directory.

    This job runs as root (to hand the broker files to Mosquitto's user); a registry it creates
    on a fresh volume must stay writable by the API, which runs unprivileged.
    """
    if os.geteuid() != 0:
        return
    st = db_path.parent.stat()
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        if path.exists():
            os.chown(path, st.st_uid, st.st_gid)


def _chown(out_dir: Path, owner: str) -> None:
    uid_text, _, gid_text = owner.partition(":")
    uid, gid = int(uid_text), int(gid_text or uid_text)
    for path in (out_dir, out_dir / "passwd", out_dir / "acl"):
        os.chown(path, uid, gid)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="broker_auth.py",
        description="Write Mosquitto's passwd and acl files from the parkwatch gateway registry.",
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="directory of passwd and acl")
    parser.add_argument("--owner", default="", metavar="UID[:GID]", help="chown the files (needs root)")
    args = parser.parse_args(argv)

    from parkwatch.cli import main as parkwatch_main

    usernames = ensure_ingest_accounts(os.environ)
    # The same settings (PARKWATCH_CONFIG and PARKWATCH_* overrides) drive the file writer.
    rc = parkwatch_main(["api", "mosquitto-files", "--out-dir", str(args.out_dir)])
    if rc != 0:
        return rc
    if args.owner:
        _chown(args.out_dir, args.owner)
    print(
        f"broker-auth: service accounts {', '.join(usernames)} registered; reload the broker with SIGHUP",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
