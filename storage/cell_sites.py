"""Cell sites (base-station cells) in the OpenCelliD CSV layout, kept in the registry's SQLite file.

OpenCelliD publishes one row per cell::

    radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
    LTE,452,4,13011,27447297,212,106.6822,20.8561,1250,34,1,1459692893,1700000000,-95

:func:`parse_opencellid` checks every row on its own: a bad row is reported with its line number
and the reason, the good rows beside it are kept. A header line is optional (OpenCelliD's full
export has one, its per-country files do not); with a header, columns are taken by name.

:class:`CellSites` stores the sites in the table ``cell_sites`` of the registry file, next to the
parks and gateway sites of :mod:`storage.places`; a row's identity is ``(radio, mcc, net, area,
cell)``, so importing a newer list replaces what changed and adds the rest. Sites carry no park:
a park's sites are those inside its boundary's bounding box widened by a margin.

OpenCelliD says nothing about operator names: :func:`operator_of` maps ``mcc``/``net`` to a name
through :data:`KNOWN_PLMNS` and the API's ``[coverage.operators_by_plmn]``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

RADIOS: Final = ("GSM", "UMTS", "CDMA", "LTE", "NR")
"""OpenCelliD's ``radio`` values (5G NR cells are ``NR``)."""
COLUMNS: Final = (
    "radio",
    "mcc",
    "net",
    "area",
    "cell",
    "unit",
    "lon",
    "lat",
    "range",
    "samples",
    "changeable",
    "created",
    "updated",
    "averageSignal",
)
"""The OpenCelliD column order (used when the file has no header line)."""
KNOWN_PLMNS: Final[dict[str, str]] = {
    "452-01": "MobiFone",
    "452-02": "VinaPhone",
    "452-04": "Viettel",
    "452-05": "Vietnamobile",
    "452-07": "Gmobile",
}
"""The public Vietnamese networks (ITU-T E.212 list), ``"MCC-MNC"`` → operator name."""
MAX_ERRORS_LISTED: Final = 100
"""An import report lists at most this many bad rows (it counts all of them)."""

_SCHEMA: Final = """CREATE TABLE IF NOT EXISTS cell_sites (
    radio TEXT NOT NULL, mcc INTEGER NOT NULL, net INTEGER NOT NULL, area INTEGER NOT NULL,
    cell INTEGER NOT NULL, unit INTEGER, lon REAL NOT NULL, lat REAL NOT NULL,
    range_m INTEGER NOT NULL, samples INTEGER NOT NULL, changeable INTEGER NOT NULL,
    created_s INTEGER NOT NULL, updated_s INTEGER NOT NULL, average_signal_dbm INTEGER,
    imported_ms INTEGER NOT NULL, PRIMARY KEY (radio, mcc, net, area, cell))"""
_INDEX: Final = "CREATE INDEX IF NOT EXISTS cell_sites_position ON cell_sites (lat, lon)"


@dataclass(frozen=True, slots=True, kw_only=True)
class CellSite:
    """One cell of an OpenCelliD list; ``range_m`` is OpenCelliD's estimated cell range in metres."""

    radio: str
    mcc: int
    net: int
    area: int
    cell: int
    unit: int | None
    lon: float
    lat: float
    range_m: int
    samples: int
    changeable: bool
    created_s: int
    updated_s: int
    average_signal_dbm: int | None

    @property
    def plmn(self) -> str:
        return f"{self.mcc:03d}-{self.net:02d}"

    @property
    def key(self) -> str:
        """``radio:mcc-net:area:cell``, unique per site."""
        return f"{self.radio}:{self.plmn}:{self.area}:{self.cell}"

    def feature(self, operator: str | None) -> dict[str, Any]:
        """A GeoJSON Point feature with the site's properties and its operator (None: unknown PLMN)."""
        return {
            "type": "Feature",
            "id": self.key,
            "geometry": {"type": "Point", "coordinates": [self.lon, self.lat]},
            "properties": {
                "radio": self.radio,
                "mcc": self.mcc,
                "net": self.net,
                "area": self.area,
                "cell": self.cell,
                "unit": self.unit,
                "range_m": self.range_m,
                "samples": self.samples,
                "operator": operator,
                "updated_s": self.updated_s,
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RowError:
    """A refused row: its 1-based line number in the file and what is wrong with it."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSites:
    """What :func:`parse_opencellid` read: the good sites and the refused rows."""

    sites: tuple[CellSite, ...]
    errors: tuple[RowError, ...]
    rows: int
    """Data rows read (header and blank lines not counted)."""


class SiteFileError(ValueError):
    """The file as a whole cannot be read as an OpenCelliD list; the message says what to fix."""


def _int(value: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} {value[:20]!r} is not an integer") from None
    if not lo <= n <= hi:
        raise ValueError(f"{name} {n} is outside {lo}..{hi}")
    return n


def _float(value: str, name: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{name} {value[:20]!r} is not a number") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"{name} {value[:20]} is outside {lo}..{hi}")
    return x


def parse_row(fields: Mapping[str, str]) -> CellSite:
    """One row (column name → text) as a site; raises ``ValueError`` naming the bad column."""
    radio = fields["radio"].strip().upper()
    if radio not in RADIOS:
        raise ValueError(f"radio {fields['radio'][:20]!r} is not one of {', '.join(RADIOS)}")
    unit_text = fields["unit"].strip()
    signal_text = fields["averageSignal"].strip()
    changeable = fields["changeable"].strip()
    if changeable not in ("0", "1"):
        raise ValueError(f"changeable {changeable[:20]!r} is not 0 or 1")
    # OpenCelliD writes unit -1 and averageSignal 0 for "unknown".
    unit = _int(unit_text, "unit", -1, 2**31) if unit_text else None
    signal = _int(signal_text, "averageSignal", -200, 0) if signal_text else None
    return CellSite(
        radio=radio,
        mcc=_int(fields["mcc"].strip(), "mcc", 0, 999),
        net=_int(fields["net"].strip(), "net", 0, 999),
        area=_int(fields["area"].strip(), "area", 0, 2**32 - 1),
        cell=_int(fields["cell"].strip(), "cell", 0, 2**36 - 1),
        unit=None if unit is None or unit < 0 else unit,
        lon=_float(fields["lon"].strip(), "lon", -180.0, 180.0),
        lat=_float(fields["lat"].strip(), "lat", -90.0, 90.0),
        range_m=_int(fields["range"].strip(), "range", 0, 100_000),
        samples=_int(fields["samples"].strip(), "samples", 0, 2**31),
        changeable=changeable == "1",
        created_s=_int(fields["created"].strip(), "created", 0, 2**33),
        updated_s=_int(fields["updated"].strip(), "updated", 0, 2**33),
        average_signal_dbm=signal if signal else None,
    )


def parse_opencellid(lines: Iterable[str]) -> ParsedSites:
    """Read an OpenCelliD CSV (text lines); bad rows become :class:`RowError`, good ones sites.

    Raises :class:`SiteFileError` when a header line lacks OpenCelliD columns. A site listed
    twice keeps its last row.
    """
    reader = csv.reader(lines)
    columns: tuple[str, ...] = COLUMNS
    by_key: dict[tuple[str, int, int, int, int], CellSite] = {}
    errors: list[RowError] = []
    rows = 0
    for record in reader:
        line = reader.line_num
        if not record or all(not f.strip() for f in record):
            continue
        if rows == 0 and "radio" in (f.strip().lower() for f in record):
            names = tuple(f.strip() for f in record)
            lower = {n.lower(): n for n in names}
            missing = [c for c in COLUMNS if c.lower() not in lower]
            if missing:
                raise SiteFileError(
                    f"the header (line {line}) lacks the OpenCelliD column(s) {', '.join(missing)}: "
                    f"expected {','.join(COLUMNS)}"
                )
            canonical = {c.lower(): c for c in COLUMNS}
            columns = tuple(canonical.get(n.lower(), n) for n in names)
            continue
        rows += 1
        if len(record) != len(columns):
            errors.append(RowError(line=line, reason=f"{len(record)} fields, expected {len(columns)}"))
            continue
        try:
            site = parse_row(dict(zip(columns, record, strict=True)))
        except ValueError as exc:
            errors.append(RowError(line=line, reason=str(exc)))
            continue
        by_key[(site.radio, site.mcc, site.net, site.area, site.cell)] = site
    return ParsedSites(sites=tuple(by_key.values()), errors=tuple(errors), rows=rows)


def parse_opencellid_text(text: str) -> ParsedSites:
    """:func:`parse_opencellid` over a whole text (an HTTP body)."""
    return parse_opencellid(io.StringIO(text, newline=""))


def operator_of(site: CellSite, by_plmn: Mapping[str, str]) -> str | None:
    """The operator name of a site's ``mcc``/``net``: ``by_plmn`` first, then :data:`KNOWN_PLMNS`.

    Both ``"452-04"`` and ``"452-004"`` spellings of a network code are looked up.
    """
    for key in (site.plmn, f"{site.mcc:03d}-{site.net:03d}"):
        name = by_plmn.get(key) or KNOWN_PLMNS.get(key)
        if name:
            return name
    return None


def bbox_around(ring: Sequence[Sequence[float]], margin_m: float) -> tuple[float, float, float, float]:
    """``(min_lon, min_lat, max_lon, max_lat)`` of ``ring`` ([lon, lat] points) widened by ``margin_m``."""
    lons = [float(p[0]) for p in ring]
    lats = [float(p[1]) for p in ring]
    dlat = margin_m / 110_574.0
    mid = math.radians((min(lats) + max(lats)) / 2.0)
    dlon = margin_m / (111_320.0 * max(math.cos(mid), 1e-6))
    return (min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat)


class CellSites:
    """The ``cell_sites`` table of one SQLite file (the API's registry).

    Args:
        path: the registry file (created, owner-only, when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        if self.path != ":memory:" and not Path(path).exists():
            # The registry file also holds key hashes: readable by its owner only.
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_INDEX)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, sites: Sequence[CellSite]) -> tuple[int, int]:
        """Store ``sites`` (distinct keys) in one transaction; returns ``(added, replaced)``."""
        now = int(time.time() * 1000)
        rows = [
            (
                s.radio,
                s.mcc,
                s.net,
                s.area,
                s.cell,
                s.unit,
                s.lon,
                s.lat,
                s.range_m,
                s.samples,
                int(s.changeable),
                s.created_s,
                s.updated_s,
                s.average_signal_dbm,
                now,
            )
            for s in sites
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.execute("SELECT COUNT(*) FROM cell_sites").fetchone()[0]
                self._db.executemany(
                    "INSERT OR REPLACE INTO cell_sites VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
                )
                after = self._db.execute("SELECT COUNT(*) FROM cell_sites").fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        added = int(after) - int(before)
        return added, len(rows) - added

    def sites(self, bbox: tuple[float, float, float, float] | None = None) -> list[CellSite]:
        """Every stored site, or those inside ``(min_lon, min_lat, max_lon, max_lat)``."""
        sql = (
            "SELECT radio, mcc, net, area, cell, unit, lon, lat, range_m, samples, changeable, "
            "created_s, updated_s, average_signal_dbm FROM cell_sites"
        )
        args: tuple[float, ...] = ()
        if bbox is not None:
            sql += " WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?"
            args = (bbox[1], bbox[3], bbox[0], bbox[2])
        sql += " ORDER BY radio, mcc, net, area, cell"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return list(_sites(rows))

    def count(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM cell_sites").fetchone()[0]
        return n

    def version(self) -> tuple[int, int]:
        """``(count, newest import ms)``: changes whenever an import changed the table."""
        with self._lock:
            n, ms = self._db.execute(
                "SELECT COUNT(*), COALESCE(MAX(imported_ms), 0) FROM cell_sites"
            ).fetchone()
        return int(n), int(ms)


def _sites(rows: Iterable[tuple[Any, ...]]) -> Iterator[CellSite]:
    for r in rows:
        yield CellSite(
            radio=r[0],
            mcc=r[1],
            net=r[2],
            area=r[3],
            cell=r[4],
            unit=r[5],
            lon=r[6],
            lat=r[7],
            range_m=r[8],
            samples=r[9],
            changeable=bool(r[10]),
            created_s=r[11],
            updated_s=r[12],
            average_signal_dbm=r[13],
        )
