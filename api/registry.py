"""The API's own registry: API keys (hashed) and provisioned gateways with MQTT credentials.

A small SQLite file of which the API is the only writer. Everything else the API serves comes
from the time-series store, so API replicas behind a load balancer share this one file (or a
copy deployed read-only next to each replica).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from api.auth import KeyRecord, Role
from api.errors import Conflict, NotFound

log = logging.getLogger(__name__)


def _owner_only(path: Path) -> None:
    """Create the registry file (and its WAL files, which SQLite gives the same mode) as 0600.

    It holds API key hashes and gateway password hashes; other local users have no business
    reading them. An existing file readable by others is tightened, and the log says so.
    """
    if str(path) == ":memory:":
        return
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)
        log.info("registry %s created with mode 0600 (readable by its owner only)", path)
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("registry %s was readable by other users; set its mode to 0600", path)


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
        parks TEXT NOT NULL, created_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS gateways (
        park TEXT NOT NULL, gw TEXT NOT NULL, description TEXT NOT NULL,
        username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (park, gw))""",
    """CREATE TABLE IF NOT EXISTS services (
        username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL)""",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRecord:
    """A provisioned gateway (its password is kept only as a Mosquitto hash)."""

    park: str
    gw: str
    description: str
    username: str
    password_hash: str
    created_ms: int
    updated_ms: int


def _gateway(row: tuple[object, ...]) -> GatewayRecord:
    names = ("park", "gw", "description", "username", "password_hash", "created_ms", "updated_ms")
    return GatewayRecord(**dict(zip(names, row, strict=True)))  # type: ignore[arg-type]


class Registry:
    """SQLite-backed registry; thread-safe (one connection behind a lock, WAL journal)."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self.path = str(path)
        _owner_only(Path(path))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        for stmt in _SCHEMA:
            self._db.execute(stmt)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    # -- keys ---------------------------------------------------------------------------------

    def add_key(self, *, sha256: str, name: str, role: Role, parks: tuple[str, ...]) -> None:
        """Store a key's hash under a name no other key of the registry has.

        Raises:
            Conflict: the name is taken (names identify keys for revocation, so they are unique).
        """
        with self._lock:
            if self._db.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise Conflict(
                    f"an API key named {name!r} exists already: pick another name or revoke it first"
                )
            self._db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?)",
                (sha256, name, role, json.dumps(list(parks)), int(time.time() * 1000)),
            )

    def api_keys(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._db.execute("SELECT sha256, name, role, parks FROM api_keys").fetchall()
        return [KeyRecord(sha256=r[0], name=r[1], role=r[2], parks=tuple(json.loads(r[3]))) for r in rows]

    def delete_key(self, name: str) -> int:
        """Revoke the key named ``name``; returns how many keys were removed (0 or 1)."""
        with self._lock:
            return self._db.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount

    # -- gateways -----------------------------------------------------------------------------

    def add_gateway(
        self, *, park: str, gw: str, description: str, username: str, password_hash: str
    ) -> GatewayRecord:
        now = int(time.time() * 1000)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO gateways VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (park, gw, description, username, password_hash, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    f"gateway {gw!r} of park {park!r} is registered already: "
                    "POST .../credentials to issue new credentials"
                ) from exc
        return GatewayRecord(
            park=park,
            gw=gw,
            description=description,
            username=username,
            password_hash=password_hash,
            created_ms=now,
            updated_ms=now,
        )

    def set_password(self, *, park: str, gw: str, password_hash: str) -> GatewayRecord:
        now = int(time.time() * 1000)
        with self._lock:
            cur = self._db.execute(
                "UPDATE gateways SET password_hash = ?, updated_ms = ? WHERE park = ? AND gw = ?",
                (password_hash, now, park, gw),
            )
        if cur.rowcount == 0:
            raise NotFound(f"gateway {gw!r} of park {park!r} is not registered: POST /api/v1/gateways first")
        gateway = self.gateway(park, gw)
        assert gateway is not None
        return gateway

    def delete_gateway(self, park: str, gw: str) -> GatewayRecord:
        """Remove a gateway and its broker credentials (effective once the broker files are regenerated).

        Raises:
            NotFound: no such gateway.
        """
        gateway = self.gateway(park, gw)
        if gateway is None:
            raise NotFound(f"gateway {gw!r} of park {park!r} is not registered")
        with self._lock:
            self._db.execute("DELETE FROM gateways WHERE park = ? AND gw = ?", (park, gw))
        return gateway

    def gateway(self, park: str, gw: str) -> GatewayRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM gateways WHERE park = ? AND gw = ?", (park, gw)).fetchone()
        return None if row is None else _gateway(row)

    def gateways(self, parks: Collection[str] | None = None) -> list[GatewayRecord]:
        """Registered gateways, of ``parks`` only when given (``None``: every park)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM gateways ORDER BY park, gw").fetchall()
        return [g for g in map(_gateway, rows) if parks is None or g.park in parks]

    # -- service accounts ---------------------------------------------------------------------

    def set_service(self, *, username: str, password_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO services VALUES (?, ?, ?)",
                (username, password_hash, int(time.time() * 1000)),
            )

    def services(self) -> list[tuple[str, str]]:
        with self._lock:
            return [
                (r[0], r[1])
                for r in self._db.execute("SELECT username, password_hash FROM services ORDER BY 1")
            ]
