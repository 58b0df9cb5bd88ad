"""The read side of storage: one query protocol, implemented for DuckDB and InfluxDB.

Every method pushes its aggregation down into the database (``GROUP BY`` cell, gateway, device or
time bucket) and returns a small column table of numpy arrays; the pure functions of
:mod:`analytics` turn those into coverage grids, dead zones, OEE and alarms, identically for both
backends.

Percentiles are the database-side *nearest rank* of InfluxQL's ``PERCENTILE(x, p)``: the
value at 1-based rank ``floor(n * p / 100 + 0.5)`` of the sorted samples, and no value when that
rank is below 1 (fewer than 5 samples for p10). Medians are interpolated (the mean of the two
middle samples when ``n`` is even), as InfluxQL's ``MEDIAN`` and DuckDB's ``median`` both do.
The DuckDB backend reproduces the InfluxQL rank exactly, so both backends give the same numbers.

Backends are registered by name with lazy import strings; see :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from contract.ids import FIELD_NAME
from storage.dead_letters import DeadLetterFilter, DeadLetterRow
from storage.schema import KIND_COLUMNS

if TYPE_CHECKING:
    from settings.api import BackendSettings

BackendName = Literal["duckdb", "influxdb"]
BACKENDS: Final[dict[BackendName, str]] = {
    "duckdb": "storage.query_duckdb:DuckDBQuery",
    "influxdb": "storage.query_influx:InfluxQuery",
}
"""Query backend name → ``module:Class`` (imported only when selected)."""

Agg = Literal["min", "max", "mean"]


class QueryError(Exception):
    """The database could not answer (unreachable, timed out, or it reported an error).

    The API answers 503: retry later.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """What a query covers. Every value has been validated before it gets here.

    Attributes:
        parks: the parks to read; an empty tuple reads none (a key without parks sees nothing).
            ``None`` means every park.
        start, end: the half-open time window ``[start, end)``, timezone-aware UTC.
        operator, tech: optional filters on cellular readings; the operator matches without
            regard to case (``viettel`` finds ``Viettel``).
        bbox: optional ``(min_lon, min_lat, max_lon, max_lat)`` on reading positions.
        gw: optional gateway filter.
        live: the window is a live view's, pinned to a refresh time (:mod:`api.live`); backends
            ignore it. Answers over it are kept as computed, without the data fingerprint,
            for as long as the view is answered as of that time (at most ``live_max_age_s``).
    """

    parks: tuple[str, ...] | None
    start: datetime
    end: datetime
    operator: str | None = None
    tech: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    gw: str | None = None
    live: bool = False


_RES_MASK: Final = ~(0xF << 52) & 0xFFFF_FFFF_FFFF_FFFF


def h3_parent_bits(resolution: int) -> tuple[int, int]:
    """``(and_mask, or_bits)`` so that ``(cell & and_mask) | or_bits`` is the H3 parent at ``resolution``.

    The H3 index keeps its resolution in bits 52-55 and one 3-bit digit per finer resolution
    below; a parent has its resolution set and every finer digit set to 7.
    """
    if not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution {resolution} is outside 0..15")
    low = (1 << (3 * (15 - resolution))) - 1
    return _RES_MASK & ~low, (resolution << 52) | low


def numeric_field(kind: str, name: str) -> str:
    """Return ``name`` if it is a numeric column of ``kind``; raise ``ValueError`` otherwise."""
    cols = {c.name: c for c in KIND_COLUMNS.get(kind, ())}
    col = cols.get(name)
    if col is None or col.type not in ("float", "int") or not FIELD_NAME.is_valid(name):
        raise ValueError(f"{kind!r} has no numeric field {name!r}")
    return name


def _obj(n: int = 0) -> npt.NDArray[np.object_]:
    return np.empty(n, dtype=object)


def _f64(n: int = 0) -> npt.NDArray[np.float64]:
    return np.full(n, np.nan)


def _i64(n: int = 0) -> npt.NDArray[np.int64]:
    return np.zeros(n, dtype=np.int64)


class _Table:
    """Column tables: equal-length numpy arrays, one per field."""

    def __len__(self) -> int:
        first = fields(self)[0]  # type: ignore[arg-type]
        return len(getattr(self, first.name))

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Any:
        """Build the table from row mappings (missing keys become NaN / None / 0)."""
        cols: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            proto = f.default_factory()  # type: ignore[operator]
            values = [r.get(f.name) for r in rows]
            if proto.dtype == object:
                cols[f.name] = np.array([*values, None], dtype=object)[:-1]
            elif proto.dtype == np.float64:
                cols[f.name] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            elif proto.dtype == np.uint64:
                cols[f.name] = np.array([0 if v is None else int(v) for v in values], dtype=np.uint64)
            else:
                cols[f.name] = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        return cls(**cols)

    def take(self, idx: npt.NDArray[Any]) -> Any:
        """The rows at ``idx`` (an index or boolean mask array)."""
        return type(self)(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})  # type: ignore[arg-type]

    def rows(self) -> list[dict[str, Any]]:
        """Rows as plain dicts of Python values (NaN stays NaN)."""
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        cols = [getattr(self, n).tolist() for n in names]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CellStats(_Table):
    """Per (park, H3 cell, operator, technology): cellular statistics in the window.

    ``samples`` counts readings with an RSRP; times are epoch milliseconds UTC.
    """

    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    h3: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    operator: npt.NDArray[np.object_] = field(default_factory=_obj)
    tech: npt.NDArray[np.object_] = field(default_factory=_obj)
    samples: npt.NDArray[np.int64] = field(default_factory=_i64)
    devices: npt.NDArray[np.int64] = field(default_factory=_i64)
    rsrp_p10_dbm: npt.NDArray[np.float64] = field(default_factory=_f64)
    rsrp_median_dbm: npt.NDArray[np.float64] = field(default_factory=_f64)
    rsrq_median_db: npt.NDArray[np.float64] = field(default_factory=_f64)
    sinr_p10_db: npt.NDArray[np.float64] = field(default_factory=_f64)
    sinr_median_db: npt.NDArray[np.float64] = field(default_factory=_f64)
    first_ms: npt.NDArray[np.int64] = field(default_factory=_i64)
    last_ms: npt.NDArray[np.int64] = field(default_factory=_i64)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkRows(_Table):
    """Per (park, operator, technology): cellular readings with an RSRP and the newest one's time.

    ``last_ms`` is epoch milliseconds UTC; rows are ordered by (park, operator, tech).
    """

    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    operator: npt.NDArray[np.object_] = field(default_factory=_obj)
    tech: npt.NDArray[np.object_] = field(default_factory=_obj)
    samples: npt.NDArray[np.int64] = field(default_factory=_i64)
    last_ms: npt.NDArray[np.int64] = field(default_factory=_i64)


@dataclass(frozen=True, slots=True, kw_only=True)
class CellSamples(_Table):
    """Positioned cellular readings with an RSRP, one row each: what the dead-zone test reads.

    ``h3`` is the reading's cell at the requested resolution, ``lat``/``lon`` its reported
    position, ``ts_ms`` epoch milliseconds UTC. A ``no_service`` reading carries RSRP -140.
    ``cell_id`` and ``pci`` name the serving cell when the reading reports it (NaN otherwise).
    """

    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    h3: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    operator: npt.NDArray[np.object_] = field(default_factory=_obj)
    tech: npt.NDArray[np.object_] = field(default_factory=_obj)
    dev: npt.NDArray[np.object_] = field(default_factory=_obj)
    ts_ms: npt.NDArray[np.int64] = field(default_factory=_i64)
    lat: npt.NDArray[np.float64] = field(default_factory=_f64)
    lon: npt.NDArray[np.float64] = field(default_factory=_f64)
    rsrp_dbm: npt.NDArray[np.float64] = field(default_factory=_f64)
    sinr_db: npt.NDArray[np.float64] = field(default_factory=_f64)
    cell_id: npt.NDArray[np.float64] = field(default_factory=_f64)
    pci: npt.NDArray[np.float64] = field(default_factory=_f64)


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadbandStats(_Table):
    """Per (park, gateway): broadband probe statistics in the window."""

    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    gw: npt.NDArray[np.object_] = field(default_factory=_obj)
    samples: npt.NDArray[np.int64] = field(default_factory=_i64)
    latency_p50_ms: npt.NDArray[np.float64] = field(default_factory=_f64)
    latency_p95_ms: npt.NDArray[np.float64] = field(default_factory=_f64)
    jitter_mean_ms: npt.NDArray[np.float64] = field(default_factory=_f64)
    loss_mean_pct: npt.NDArray[np.float64] = field(default_factory=_f64)
    down_median_mbps: npt.NDArray[np.float64] = field(default_factory=_f64)
    up_median_mbps: npt.NDArray[np.float64] = field(default_factory=_f64)
    ipv6_probes: npt.NDArray[np.int64] = field(default_factory=_i64)
    ipv6_ok: npt.NDArray[np.int64] = field(default_factory=_i64)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bucketed(_Table):
    """The key of every bucket table: (park, gateway, device, bucket start in epoch ms)."""

    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    gw: npt.NDArray[np.object_] = field(default_factory=_obj)
    dev: npt.NDArray[np.object_] = field(default_factory=_obj)
    bucket_ms: npt.NDArray[np.int64] = field(default_factory=_i64)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineBuckets(_Bucketed):
    """Per (park, gateway, machine, time bucket): its last state and the range of its counters.

    ``state`` is the last non-null state in the bucket; ``parts_total_min/max`` and
    ``rejects_total_min/max`` the smallest and largest cumulative counter values in it.
    ``bucket_ms`` is the bucket start, epoch milliseconds, aligned to multiples of the width.
    """

    state: npt.NDArray[np.object_] = field(default_factory=_obj)
    parts_total_min: npt.NDArray[np.float64] = field(default_factory=_f64)
    parts_total_max: npt.NDArray[np.float64] = field(default_factory=_f64)
    rejects_total_min: npt.NDArray[np.float64] = field(default_factory=_f64)
    rejects_total_max: npt.NDArray[np.float64] = field(default_factory=_f64)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyBuckets(_Bucketed):
    """Per (park, gateway, meter, time bucket): mean power and the range of the energy counter.

    ``bucket_ms`` is the bucket start, epoch milliseconds, aligned to multiples of the width.
    """

    power_mean_kw: npt.NDArray[np.float64] = field(default_factory=_f64)
    energy_min_kwh: npt.NDArray[np.float64] = field(default_factory=_f64)
    energy_max_kwh: npt.NDArray[np.float64] = field(default_factory=_f64)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldBuckets(_Bucketed):
    """Per (park, gateway, device, time bucket): one numeric field of one kind, aggregated.

    ``value`` is the requested aggregate (min, max or mean) of the field in the bucket, in the
    field's own unit; ``bucket_ms`` is the bucket start, epoch milliseconds.
    """

    value: npt.NDArray[np.float64] = field(default_factory=_f64)


STATUS_CARRIED: Final = (
    "agent_version",
    "config_hash",
    "backlog",
    "dropped",
    "unconfirmed",
    "expired",
    "buffer_pct",
    "uplink_operator",
    "uplink_tech",
    "uplink_rsrp_dbm",
    "uplink_sinr_db",
)
"""Status columns that the latest status takes from an earlier one when it lacks them.

A gateway's final ``offline`` status (its Last Will, or the clean stop) carries only the state;
its last known version, counters and uplink stay what the previous statuses said. ``state`` and
``config_error`` are never carried: an absent error means none.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRows(_Table):
    """Gateway status rows (see :data:`storage.duckdb_schema.STATUS_COLUMNS`), times in ms."""

    ts_ms: npt.NDArray[np.int64] = field(default_factory=_i64)
    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    gw: npt.NDArray[np.object_] = field(default_factory=_obj)
    state: npt.NDArray[np.object_] = field(default_factory=_obj)
    agent_version: npt.NDArray[np.object_] = field(default_factory=_obj)
    config_hash: npt.NDArray[np.object_] = field(default_factory=_obj)
    backlog: npt.NDArray[np.float64] = field(default_factory=_f64)
    dropped: npt.NDArray[np.float64] = field(default_factory=_f64)
    unconfirmed: npt.NDArray[np.float64] = field(default_factory=_f64)
    expired: npt.NDArray[np.float64] = field(default_factory=_f64)
    buffer_pct: npt.NDArray[np.float64] = field(default_factory=_f64)
    uplink_operator: npt.NDArray[np.object_] = field(default_factory=_obj)
    uplink_tech: npt.NDArray[np.object_] = field(default_factory=_obj)
    uplink_rsrp_dbm: npt.NDArray[np.float64] = field(default_factory=_f64)
    uplink_sinr_db: npt.NDArray[np.float64] = field(default_factory=_f64)
    config_error: npt.NDArray[np.object_] = field(default_factory=_obj)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRows(_Table):
    """The latest cumulative loss-ledger snapshot per gateway, times in ms."""

    ts_ms: npt.NDArray[np.int64] = field(default_factory=_i64)
    park: npt.NDArray[np.object_] = field(default_factory=_obj)
    gw: npt.NDArray[np.object_] = field(default_factory=_obj)
    received: npt.NDArray[np.float64] = field(default_factory=_f64)
    missing: npt.NDArray[np.float64] = field(default_factory=_f64)
    duplicated: npt.NDArray[np.float64] = field(default_factory=_f64)
    late: npt.NDArray[np.float64] = field(default_factory=_f64)
    last_seq: npt.NDArray[np.float64] = field(default_factory=_f64)
    restarts: npt.NDArray[np.float64] = field(default_factory=_f64)


def merge_ledger(rows: Sequence[Mapping[str, Any]]) -> LedgerRows:
    """Each gateway's loss ledger from the latest snapshot of every (park, gw, ingester).

    With one ingester its counters are the answer. With several on a shared subscription each
    counted only the batches it received, so their received, duplicated and late add up and
    the last sequence number is the highest; missing is recomputed over all of them. Every
    ingester's own counters keep ``received + missing = last_seq - first_seq + 1``, which gives
    its first sequence number, and the gateway's missing batches are the span from the lowest
    first to the highest last number less everything received (never below 0). A batch
    redelivered to a different ingester counts as received twice there, not as duplicated.
    A snapshot that names no ingester (written by an older version) counts only while the
    gateway has no snapshot that names one. Sequence restarts add up; once a gateway's sequence
    restarted, the span no longer measures what was sent, and missing is the ingesters' sum.
    """
    by_gw: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_gw.setdefault((r["park"], r["gw"]), []).append(r)
    out: list[dict[str, Any]] = []
    for (park, gw), snaps in sorted(by_gw.items()):
        named = [s for s in snaps if s.get("ingester")]
        snaps = named or snaps

        def num(s: Mapping[str, Any], key: str) -> int:
            v = s.get(key)
            return 0 if v is None or v != v else int(v)

        received = sum(num(s, "received") for s in snaps)
        last_seq = max(num(s, "last_seq") if s.get("last_seq") is not None else -1 for s in snaps)
        restarts = sum(num(s, "restarts") for s in snaps)
        if len(snaps) == 1 or restarts:
            missing = sum(num(s, "missing") for s in snaps)
        else:
            first = min(num(s, "last_seq") + 1 - num(s, "received") - num(s, "missing") for s in snaps)
            missing = max(0, last_seq - first + 1 - received)
        out.append(
            {
                "ts_ms": max(num(s, "ts_ms") for s in snaps),
                "park": park,
                "gw": gw,
                "received": received,
                "missing": missing,
                "duplicated": sum(num(s, "duplicated") for s in snaps),
                "late": sum(num(s, "late") for s in snaps),
                "last_seq": last_seq,
                "restarts": restarts,
            }
        )
    result: LedgerRows = LedgerRows.from_rows(out)
    return result


class QueryBackend(Protocol):
    """Aggregating reads over the stored readings. Blocking; the API calls it in a worker thread."""

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        """Cellular statistics per (park, H3 cell at ``resolution``, operator, technology)."""
        ...

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        """Every positioned cellular reading with an RSRP, its cell at ``resolution``, ordered by
        (park, h3, operator, tech, dev, ts)."""
        ...

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        """The operators and technologies with cellular readings, per park; ``timed=False``
        ignores the scope's window (every reading ever stored)."""
        ...

    def broadband_stats(self, scope: Scope, *, by: Literal["gw", "park"] = "gw") -> BroadbandStats:
        """Broadband probe statistics per (park, gateway), or per park (``gw`` empty)."""
        ...

    def machine_buckets(self, scope: Scope, *, bucket_s: int) -> MachineBuckets:
        """Machine state and counters per device and ``bucket_s`` time bucket."""
        ...

    def energy_buckets(self, scope: Scope, *, bucket_s: int) -> EnergyBuckets:
        """Meter power and energy per device and ``bucket_s`` time bucket."""
        ...

    def field_buckets(self, kind: str, scope: Scope, *, bucket_s: int, field: str, agg: Agg) -> FieldBuckets:
        """``agg`` of the numeric ``field`` of ``kind`` per device and ``bucket_s`` time bucket."""
        ...

    def status(self, scope: Scope, *, latest: bool) -> StatusRows:
        """Gateway status rows in the window, or (``latest``) the newest row per gateway ever."""
        ...

    def ledger(self, scope: Scope) -> LedgerRows:
        """The newest loss-ledger snapshot per gateway."""
        ...

    def data_version(self, scope: Scope | None = None) -> Hashable | None:
        """A cheap fingerprint of the stored cellular readings, or None when the database has none.

        Equal fingerprints mean every answer computed from the readings is still exact, so the
        API may keep such an answer beyond its cache TTL. None: no fingerprint, rely on the TTL.
        With a ``scope``, the fingerprint covers only the readings of its time window: readings
        appended outside the window leave it (and every answer over that window) unchanged.
        """
        ...

    def dead_letters(self, scope: Scope, flt: DeadLetterFilter) -> list[DeadLetterRow]:
        """Dead letters in the scope (parks, gateway, window) matching ``flt``, newest first."""
        ...

    def ping(self) -> None:
        """Raise :class:`QueryError` unless the database answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class BackendFactory(Protocol):
    """How a registered backend class is built: from its settings struct (``[backend]``)."""

    def __call__(self, settings: BackendSettings, *, ingest_resolution: int) -> QueryBackend: ...


def load_backend(settings: BackendSettings, *, ingest_resolution: int) -> QueryBackend:
    """Import and build the backend named by ``settings.type``, as :func:`ingest.sinks.base.load_sink` does.

    Args:
        settings: the ``[backend]`` table: :class:`settings.api.DuckdbQuerySettings` or
            :class:`settings.api.InfluxQuerySettings`.
        ingest_resolution: the H3 resolution the ingester stores (finer requests are refused).
    """
    name: BackendName = settings.__struct_config__.tag  # type: ignore[assignment]
    module_name, _, cls_name = BACKENDS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    factory: BackendFactory = cls.from_settings
    return factory(settings, ingest_resolution=ingest_resolution)
