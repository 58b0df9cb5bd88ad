"""Parks and fixed gateway sites as data, in the registry's SQLite file.

The API writes them (``PUT /api/v1/parks/{park}``, ``parkwatch park create``); the ingester reads
them, live, for gateway positions (the H3 cell of readings without their own coordinates) and to
refuse unknown parks or gateways when told to. The tables live in the API registry's file but
this module belongs to ``storage`` because both sides use it (``ingest`` and ``api`` never import
each other). Static ``[[parks]]`` in ``api.toml`` seed the table and keep working.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.ids import ID

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS parks (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, boundary TEXT NOT NULL, timezone TEXT NOT NULL,
        updated_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS gateway_sites (
        gw TEXT PRIMARY KEY, park TEXT NOT NULL, lat REAL, lon REAL, description TEXT NOT NULL,
        updated_ms INTEGER NOT NULL)""",
)

LonLat = tuple[float, float]


class PlaceError(ValueError):
    """A park or gateway that cannot be stored as given; the message says what to fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkRecord:
    """A park: id, display name, outer boundary ring ([lon, lat], GeoJSON order), IANA time zone."""

    id: str
    name: str = ""
    boundary: tuple[LonLat, ...] = ()
    timezone: str = "UTC"
    updated_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        ring = [list(p) for p in self.boundary]
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        return {
            "id": self.id,
            "name": self.name,
            "boundary": {"type": "Polygon", "coordinates": [ring]} if ring else None,
            "timezone": self.timezone,
            "updated_ms": self.updated_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySite:
    """A gateway's place: its park, fixed position (None for a mobile one) and a description."""

    gw: str
    park: str
    lat: float | None = None
    lon: float | None = None
    description: str = ""
    updated_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "gw": self.gw,
            "park": self.park,
            "lat": self.lat,
            "lon": self.lon,
            "description": self.description,
            "updated_ms": self.updated_ms,
        }


def check_place_id(value: str, what: str) -> str:
    if not ID.is_valid(value):
        raise PlaceError(f"invalid {what} id {value[:80]!r}: use {ID.rule}")
    return value


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PlaceError(
            f"unknown time zone {name[:60]!r}: use an IANA name such as Asia/Ho_Chi_Minh"
        ) from exc
    return name


def boundary_from_geojson(doc: Any) -> tuple[LonLat, ...]:
    """The outer ring of a GeoJSON Polygon (or a Feature / FeatureCollection holding one)."""
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        doc = features[0] if len(features) == 1 else None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    coords = doc.get("coordinates") if isinstance(doc, dict) and doc.get("type") == "Polygon" else None
    if not isinstance(coords, list) or not coords or not isinstance(coords[0], list):
        raise PlaceError("the boundary must be a GeoJSON Polygon (or a Feature holding one)")
    return check_ring(coords[0])


def check_ring(points: Sequence[Any]) -> tuple[LonLat, ...]:
    """A ring of [lon, lat] points: at least 3 distinct ones, in range (a closing point is dropped)."""
    ring: list[LonLat] = []
    for p in points:
        ok = isinstance(p, list | tuple) and len(p) >= 2
        lon, lat = (p[0], p[1]) if ok else (None, None)
        if not (isinstance(lon, int | float) and isinstance(lat, int | float)):
            raise PlaceError(f"boundary point {str(p)[:60]} is not [lon, lat]")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise PlaceError(f"boundary point {[lon, lat]} is out of range: GeoJSON order is [lon, lat]")
        ring.append((float(lon), float(lat)))
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    if len(set(ring)) < 3:
        raise PlaceError("a boundary needs at least 3 distinct points")
    if len(ring) > 10_000:
        raise PlaceError("a boundary may have at most 10,000 points")
    return tuple(ring)


class Places:
    """The ``parks`` and ``gateway_sites`` tables of one SQLite file.

    Args:
        path: the registry file (created when missing, unless ``read_only``).
        read_only: open without writing or creating (the ingester).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        if read_only:
            uri = f"file:{Path(path).resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            if self.path != ":memory:" and not Path(path).exists():
                # The registry file also holds key hashes: readable by its owner only.
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            for stmt in _SCHEMA:
                self._db.execute(stmt)
        self._db.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # a registry no park was ever stored in
                    return []
                raise

    def _write(self, sql: str, args: Sequence[Any]) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- parks --

    def put_park(self, park: ParkRecord) -> ParkRecord:
        """Create or replace a park; returns it as stored."""
        check_place_id(park.id, "park")
        check_timezone(park.timezone)
        stored = ParkRecord(
            id=park.id,
            name=park.name,
            boundary=check_ring(park.boundary) if park.boundary else (),
            timezone=park.timezone,
            updated_ms=int(time.time() * 1000),
        )
        self._write(
            "INSERT OR REPLACE INTO parks VALUES (?, ?, ?, ?, ?)",
            (stored.id, stored.name, json.dumps(stored.boundary), stored.timezone, stored.updated_ms),
        )
        return stored

    def seed_parks(self, parks: Sequence[ParkRecord]) -> int:
        """Store the parks not stored yet (the static ``[[parks]]`` of a config); returns how many."""
        known = {p.id for p in self.parks()}
        added = [p for p in parks if p.id not in known]
        for park in added:
            self.put_park(park)
        return len(added)

    def delete_park(self, park_id: str) -> bool:
        """Delete a park (its gateway sites too); False when it was not stored."""
        deleted = self._write("DELETE FROM parks WHERE id = ?", (park_id,))
        self._write("DELETE FROM gateway_sites WHERE park = ?", (park_id,))
        return deleted > 0

    def park(self, park_id: str) -> ParkRecord | None:
        found = [p for p in self._parks("WHERE id = ?", (park_id,))]
        return found[0] if found else None

    def parks(self) -> list[ParkRecord]:
        return self._parks("ORDER BY id", ())

    def _parks(self, where: str, args: Sequence[Any]) -> list[ParkRecord]:
        rows = self._rows(f"SELECT id, name, boundary, timezone, updated_ms FROM parks {where}", args)
        return [
            ParkRecord(
                id=r[0],
                name=r[1],
                boundary=tuple((float(p[0]), float(p[1])) for p in json.loads(r[2])),
                timezone=r[3],
                updated_ms=r[4],
            )
            for r in rows
        ]

    # -- gateway sites --

    def put_gateway(self, site: GatewaySite) -> GatewaySite:
        """Create or replace a gateway's site; its park must be stored."""
        check_place_id(site.gw, "gateway")
        check_place_id(site.park, "park")
        if (site.lat is None) != (site.lon is None):
            raise PlaceError("give both lat and lon, or neither (a mobile gateway)")
        if (
            site.lat is not None
            and site.lon is not None
            and not (-90 <= site.lat <= 90 and -180 <= site.lon <= 180)
        ):
            raise PlaceError(f"position {site.lat}, {site.lon} is out of range (lat -90..90, lon -180..180)")
        if self.park(site.park) is None:
            raise PlaceError(f"park {site.park!r} is not stored: create it first")
        stored = GatewaySite(
            gw=site.gw,
            park=site.park,
            lat=site.lat,
            lon=site.lon,
            description=site.description,
            updated_ms=int(time.time() * 1000),
        )
        self._write(
            "INSERT OR REPLACE INTO gateway_sites VALUES (?, ?, ?, ?, ?, ?)",
            (stored.gw, stored.park, stored.lat, stored.lon, stored.description, stored.updated_ms),
        )
        return stored

    def delete_gateway(self, gw: str) -> bool:
        return self._write("DELETE FROM gateway_sites WHERE gw = ?", (gw,)) > 0

    def gateways(self, park: str | None = None) -> list[GatewaySite]:
        where, args = ("WHERE park = ? ORDER BY gw", (park,)) if park else ("ORDER BY gw", ())
        rows = self._rows(
            f"SELECT gw, park, lat, lon, description, updated_ms FROM gateway_sites {where}", args
        )
        return [
            GatewaySite(gw=r[0], park=r[1], lat=r[2], lon=r[3], description=r[4], updated_ms=r[5])
            for r in rows
        ]
