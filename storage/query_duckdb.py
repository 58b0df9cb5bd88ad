"""Query backend over the embedded DuckDB store (SQL, every value a bound parameter).

H3 parents are computed inside the query with bit arithmetic on the ``UBIGINT`` cell index
(set the resolution field, fill the finer digits with 7), so a coarser grid is aggregated exactly
from the raw samples. DuckDB allows one read-write process per file: the API either shares the
ingester's connection (the embedded demo) or opens the file read-only when no writer holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storage.query import (
    Agg,
    BroadbandStats,
    Buckets,
    CellStats,
    LedgerRows,
    QueryError,
    Scope,
    StatusRows,
    h3_parent_bits,
    merge_ledger,
    numeric_field,
)
from storage.schema import GATEWAY_STATUS, KIND_COLUMNS, LOSS_LEDGER

_AGG_SQL: Final[dict[str, str]] = {"min": "min", "max": "max", "mean": "avg"}


def _pct(col: str, p: int) -> str:
    """InfluxQL's nearest-rank ``PERCENTILE(col, p)`` in DuckDB SQL (see :mod:`storage.query`)."""
    rank = f"CAST(floor(count({col}) * {p} / 100.0 + 0.5) AS BIGINT)"
    return f"CASE WHEN {rank} >= 1 THEN list_sort(list({col}) FILTER (WHERE {col} IS NOT NULL))[{rank}] END"


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


_POOL: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cell-stats")
"""Workers for the column work of :func:`cell_stats_from_rows` (numpy and Arrow release the GIL)."""


def _codes(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Dense integer codes of a column (NULL gets a code of its own) and the value of each code."""
    enc = pc.dictionary_encode(col, null_encoding="encode").combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, enc.dictionary.to_pylist()


def _uint_codes(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], np.ma.MaskedArray[Any, Any]]:
    """Dense codes of an unsigned integer column (NULL gets a code of its own) and the value of
    each code (masked for NULL)."""
    enc = pc.dictionary_encode(col, null_encoding="encode").combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    mask = enc.dictionary.is_null().to_numpy(zero_copy_only=False)
    values = pc.fill_null(enc.dictionary, 0).to_numpy(zero_copy_only=False)
    return codes, np.ma.MaskedArray(values, mask=mask)


def _millis(col: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """A timestamp column as epoch milliseconds (``epoch_ms`` in DuckDB)."""
    ts = col.to_numpy().astype("datetime64[us]").view(np.int64)
    out: npt.NDArray[np.int64] = ts // 1000
    return out


def _floats(col: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    """A float column as numpy, NULL as NaN."""
    out: npt.NDArray[np.float64] = col.to_numpy().astype(np.float64, copy=False)
    return out


class _GroupLayout:
    """Rows laid out per group for row-wise sorting: each group becomes one row of a NaN-padded
    matrix, with groups of similar size (the same rounded-up width) sharing a matrix, so padding
    adds at most a quarter to the data. Sorting a matrix along its rows sorts every group at once,
    exactly, with NaN (missing values and padding) last.
    """

    def __init__(self, gid: npt.NDArray[np.int64], groups: int) -> None:
        self.groups = groups
        counts = np.bincount(gid, minlength=groups)
        # Widths: 1..8, then four steps per power of two (8, 10, 12, 14, 16, 20, ...), so a
        # group's row is at most 25 % padding.
        width = np.maximum(counts, 1).astype(np.int64)
        big = counts > 8
        step = 1 << (np.floor(np.log2(counts[big])).astype(np.int64) - 2)
        width[big] = -(-counts[big] // step) * step
        # Number the groups by (width, group) so each width class is one contiguous run of rows,
        # and all matrices lie one after the other in one flat buffer.
        self.members = np.lexsort((np.arange(groups), width))
        width_new = width[self.members]
        row_start = np.empty(groups, dtype=np.int64)  # each group's matrix row in the buffer
        row_start[self.members] = np.cumsum(width_new) - width_new
        self.size = int(width_new.sum())
        # Each input row's slot: its group's row start plus its rank within the group (a stable
        # sort by group gives the ranks; any order within a group would do).
        order = np.argsort(gid.astype(np.uint16) if groups <= 1 << 16 else gid, kind="stable")
        g_sorted = gid[order]
        first_of_group = np.cumsum(counts) - counts
        self.dest = np.empty(len(gid), dtype=np.int64)
        self.dest[order] = np.arange(len(gid), dtype=np.int64) + (row_start - first_of_group)[g_sorted]
        # (width, first group, end group, first buffer slot) per width class
        self.classes: list[tuple[int, int, int, int]] = []
        counts_new = counts[self.members]
        bounds = np.flatnonzero(np.diff(width_new)) + 1
        for ga, gb in zip([0, *bounds.tolist()], [*bounds.tolist(), groups], strict=True):
            if counts_new[ga:gb].sum() == 0:
                continue
            self.classes.append((int(width_new[ga]), ga, gb, int(row_start[self.members[ga]])))

    def order_stats(
        self, values: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per group: InfluxQL's nearest-rank p10 and the interpolated median of the non-NaN ``values``."""
        p10 = np.full(self.groups, np.nan)
        median = np.full(self.groups, np.nan)
        buf = np.full(self.size, np.nan)
        buf[self.dest] = values
        for w, ga, gb, off in self.classes:
            m = buf[off : off + (gb - ga) * w].reshape(gb - ga, w)
            m.sort(axis=1)
            n = w - np.isnan(m).sum(axis=1)
            rows = np.arange(gb - ga)
            members = self.members[ga:gb]
            r = np.floor(n * 10 / 100.0 + 0.5).astype(np.int64)
            has = r >= 1
            p10[members[has]] = m[rows[has], r[has] - 1]
            has = n > 0
            nh = n[has]
            median[members[has]] = (m[rows[has], (nh + 1) // 2 - 1] + m[rows[has], nh // 2]) / 2
        return p10, median


def _distinct_per_group(
    gid: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], groups: int, n_codes: int
) -> npt.NDArray[np.int64]:
    """Number of distinct ``codes`` per group."""
    pairs = gid * n_codes + codes
    span = groups * n_codes
    if span <= max(4 * len(pairs), 1 << 20):
        seen = np.bincount(pairs, minlength=span).reshape(groups, n_codes) > 0
        counts: npt.NDArray[np.int64] = seen.sum(axis=1).astype(np.int64)
        return counts
    pairs = np.sort(pairs)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] // n_codes, minlength=groups).astype(np.int64)


def _dense_rank(values: list[Any]) -> npt.NDArray[np.int64]:
    """Per value its rank in SQL order (NULL last); equal values share a rank."""
    order = sorted({v for v in values if v is not None})
    rank = {v: i for i, v in enumerate(order)}
    return np.array([rank[v] if v is not None else len(order) for v in values], dtype=np.int64)


def _pack_series(
    parts: list[tuple[npt.NDArray[np.int64], list[Any]]],
) -> tuple[npt.NDArray[np.int64], list[tuple[Any, ...]]]:
    """Combine the codes of several key columns into one code per distinct tuple of values."""
    sizes = [len(values) for _, values in parts]
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    for (codes, _), size in zip(parts, sizes, strict=True):
        key = key * size + codes
    uniq, code = np.unique(key, return_inverse=True)
    tuples: list[tuple[Any, ...]] = []
    for k in uniq.tolist():
        idx = []
        for size in reversed(sizes):
            k, r = divmod(k, size)
            idx.append(r)
        tuples.append(tuple(values[i] for (_, values), i in zip(parts, reversed(idx), strict=True)))
    return code.ravel().astype(np.int64), tuples


def cell_stats_from_rows(table: pa.Table, *, constants: Mapping[str, str] | None = None) -> CellStats:
    """Aggregate raw cellular rows into :class:`CellStats`, exactly as the SQL definition would.

    ``table`` has the columns ``park, h3, operator, tech, dev, ts, rsrp_dbm, rsrq_db, sinr_db``
    (one row per reading, ``h3`` already at the requested resolution). Per (park, h3, operator,
    tech) group with at least one RSRP: ``samples`` = readings with an RSRP; ``devices`` = distinct
    non-NULL devices among them; first/last seen over them; RSRP and SINR nearest-rank p10 and
    interpolated medians, RSRQ median, each over the group's non-NULL values of that metric. Rows
    are ordered by park, h3, operator, tech (NULL last), as ``ORDER BY`` in DuckDB.
    A key column named in ``constants`` may be absent: every row has that value.
    """
    constants = constants or {}
    if table.num_rows == 0:
        return CellStats()

    # Arrow and numpy release the GIL: encode the key columns side by side.
    def encode(name: str) -> Future[tuple[npt.NDArray[np.int64], list[Any]]]:
        if name in constants:
            done: Future[tuple[npt.NDArray[np.int64], list[Any]]] = Future()
            done.set_result((np.zeros(table.num_rows, dtype=np.int64), [constants[name]]))
            return done
        return _POOL.submit(_codes, table[name])

    park_f, op_f, tech_f, h3_f, dev_f = (encode(name) for name in ("park", "operator", "tech", "h3", "dev"))
    series_c, series = _pack_series([park_f.result(), op_f.result(), tech_f.result()])
    h3_c, cells = h3_f.result()
    dev_c, devs = dev_f.result()
    return _aggregate(
        table,
        series_c,
        series,
        h3_c,
        np.array([0 if c is None else c for c in cells], dtype=np.uint64),
        dev_c,
        np.array([d is not None for d in devs], dtype=bool),
    )


_SPLIT_ROWS: Final = 100_000
"""From this many rows on, the groups are aggregated in two halves side by side."""


def _aggregate(
    table: pa.Table,
    series_c: npt.NDArray[np.int64],
    series: list[tuple[Any, ...]],
    h3_c: npt.NDArray[np.int64],
    cells: npt.NDArray[np.uint64],
    dev_c: npt.NDArray[np.int64],
    dev_known: npt.NDArray[np.bool_],
) -> CellStats:
    """The aggregation behind :func:`cell_stats_from_rows`, over coded keys.

    ``series_c`` numbers each row's (park, operator, tech), ``series`` holds the values of each
    number; ``h3_c`` numbers the row's cell, ``cells`` the cell of each number; ``dev_c`` numbers
    the row's device, ``dev_known`` is False for the number of a NULL device. ``table`` supplies
    ``ts`` (a timestamp), ``rsrp_dbm, rsrq_db, sinr_db``.

    A group lies in one cell, so the rows of even and odd cell numbers form two independent
    halves: large inputs are aggregated half here, half on a worker thread (numpy releases the
    GIL), and the halves' groups are put together and ordered at the end.
    """
    rows = _Rows(
        series_c=series_c,
        h3_c=h3_c,
        dev_c=dev_c,
        ts_ms=_millis(table["ts"]),
        rsrp=_floats(table["rsrp_dbm"]),
        rsrq=_floats(table["rsrq_db"]),
        sinr=_floats(table["sinr_db"]),
    )
    shape = (len(series), len(cells))
    if len(series_c) < _SPLIT_ROWS:
        parts = [_group_stats(rows, None, shape, dev_known)]
    else:
        odd = _POOL.submit(_group_stats, rows, 1, shape, dev_known)
        parts = [_group_stats(rows, 0, shape, dev_known), odd.result()]
    g = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    series_k, h3_k = g["series_k"], g["h3_k"]

    parks, ops, techs = ([s[i] for s in series] for i in range(3))
    cell_rank = np.empty(len(cells), dtype=np.int64)
    cell_rank[np.argsort(cells, kind="stable")] = np.arange(len(cells))
    idx = np.lexsort(
        (
            _dense_rank(techs)[series_k],
            _dense_rank(ops)[series_k],
            cell_rank[h3_k],
            _dense_rank(parks)[series_k],
        )
    )

    def obj(values: list[Any]) -> npt.NDArray[np.object_]:
        arr = np.array([*values, None], dtype=object)[:-1]
        out: npt.NDArray[np.object_] = arr[series_k[idx]]
        return out

    return CellStats(
        park=obj(parks),
        h3=cells[h3_k[idx]],
        operator=obj(ops),
        tech=obj(techs),
        **{name: g[name][idx] for name in _GROUP_COLUMNS},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rows:
    """The per-row arrays of :func:`_aggregate`."""

    series_c: npt.NDArray[np.int64]
    h3_c: npt.NDArray[np.int64]
    dev_c: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    rsrp: npt.NDArray[np.float64]
    rsrq: npt.NDArray[np.float64]
    sinr: npt.NDArray[np.float64]


_GROUP_COLUMNS: Final = (
    "samples",
    "devices",
    "rsrp_p10_dbm",
    "rsrp_median_dbm",
    "rsrq_median_db",
    "sinr_p10_db",
    "sinr_median_db",
    "first_ms",
    "last_ms",
)


def _group_stats(
    rows: _Rows, half: int | None, shape: tuple[int, int], dev_known: npt.NDArray[np.bool_]
) -> dict[str, npt.NDArray[Any]]:
    """Statistics of the groups with at least one RSRP among ``rows`` (``half`` 0 or 1: only the
    rows of even or odd cell numbers): ``series_k``, ``h3_k`` and the :data:`_GROUP_COLUMNS`."""
    r = rows
    if half is not None:
        sel = np.flatnonzero((r.h3_c & 1) == half)
        r = _Rows(**{name: np.take(getattr(rows, name), sel) for name in _Rows.__dataclass_fields__})
    n_series, n_cells = shape
    key = r.series_c * n_cells + r.h3_c
    span = n_series * n_cells
    if span <= max(4 * len(key), 1 << 20):
        present = np.bincount(key, minlength=span) > 0
        uniq = np.flatnonzero(present)
        gid = (np.cumsum(present) - 1)[key]
    else:
        uniq, gid = np.unique(key, return_inverse=True)
        gid = gid.ravel()
    groups = len(uniq)
    has_rsrp = ~np.isnan(r.rsrp)
    g_r = gid[has_rsrp]
    samples = np.bincount(g_r, minlength=groups)
    ts_ms = r.ts_ms[has_rsrp]
    first_ms = np.full(groups, np.iinfo(np.int64).max)
    last_ms = np.full(groups, np.iinfo(np.int64).min)
    np.minimum.at(first_ms, g_r, ts_ms)
    np.maximum.at(last_ms, g_r, ts_ms)
    dev_r = r.dev_c[has_rsrp]
    known = dev_known[dev_r]
    devices = _distinct_per_group(g_r[known], dev_r[known], groups, len(dev_known))
    layout = _GroupLayout(gid, groups)
    rsrp_p10, rsrp_med = layout.order_stats(r.rsrp)
    _, rsrq_med = layout.order_stats(r.rsrq)
    sinr_p10, sinr_med = layout.order_stats(r.sinr)
    keep = samples > 0
    series_k, h3_k = np.divmod(uniq[keep], n_cells)
    return {
        "series_k": series_k,
        "h3_k": h3_k,
        "samples": samples[keep].astype(np.int64),
        "devices": devices[keep].astype(np.int64),
        "rsrp_p10_dbm": rsrp_p10[keep],
        "rsrp_median_dbm": rsrp_med[keep],
        "rsrq_median_db": rsrq_med[keep],
        "sinr_p10_db": sinr_p10[keep],
        "sinr_median_db": sinr_med[keep],
        "first_ms": first_ms[keep],
        "last_ms": last_ms[keep],
    }


def learn_series_names(known: dict[int, tuple[Any, ...]], rows: list[dict[str, Any]]) -> bool:
    """Add ``rows`` (``k`` = hash of ``park, operator, tech``) to ``known``.

    Returns False when a hash already stands for different names (a collision); ``known``
    keeps the first names of such a hash.
    """
    unique = True
    for row in rows:
        names = (row["park"], row["operator"], row["tech"])
        if known.setdefault(int(row["k"]), names) != names:
            unique = False
    return unique


class DuckDBQuery:
    """Aggregating reads from a DuckDB database file or an existing connection.

    Args:
        path: the database file, opened read-only (ignored when ``connection`` is given).
        connection: a connection shared with the writer in the same process.
        ingest_resolution: the H3 resolution the ingester stores (finer requests are refused).
        hashed_keys: aggregate cell statistics over 64-bit hashes of the key strings (the fast
            way, see :meth:`cell_stats`); False fetches the strings themselves, which is what
            the backend falls back to after a hash collision. Both give the same answer.
    """

    def __init__(
        self,
        *,
        path: str | Path = "",
        connection: duckdb.DuckDBPyConnection | None = None,
        ingest_resolution: int = 10,
        hashed_keys: bool = True,
    ) -> None:
        self.ingest_resolution = ingest_resolution
        self.hashed_keys = hashed_keys
        self._lock = threading.Lock()
        self._series: dict[int, tuple[Any, ...]] = {}
        self._hash_of_null: int | None = None
        self._owned = connection is None
        if connection is not None:
            self._con = connection
        else:
            try:
                self._con = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:
                raise QueryError(
                    f"cannot open DuckDB file {path}: {exc}. The ingester creates it; while an ingester "
                    "process writes it, no other process may open it: serve the API from the ingester's "
                    "process (parkwatch demo) or use InfluxDB"
                ) from exc

    # -- plumbing -----------------------------------------------------------------------------

    def _fetch(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        try:
            with self._lock:
                cur = self._con.cursor()
            try:
                cur.execute(sql, params)
                names = [d[0] for d in cur.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            finally:
                cur.close()
        except duckdb.CatalogException:
            # A table appears with the first reading of its kind: nothing stored yet.
            return []
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB query failed: {exc}") from exc

    def _fetch_arrow(self, sql: str, params: list[Any]) -> pa.Table | None:
        """Run ``sql`` and return its rows as one Arrow table (None when the table does not exist yet)."""
        try:
            with self._lock:
                cur = self._con.cursor()
            try:
                rel = cur.sql(sql, params=params)
                # DuckDB 1.x names it arrow(), 2.x to_arrow_table().
                fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
                table: pa.Table = fetch()
                return table
            finally:
                cur.close()
        except duckdb.CatalogException:
            return None
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB query failed: {exc}") from exc

    @staticmethod
    def _where(scope: Scope, *, positioned: bool = False, cellular: bool = False) -> tuple[str, list[Any]]:
        conds = ["ts >= ?", "ts < ?"]
        params: list[Any] = [_naive_utc(scope.start), _naive_utc(scope.end)]
        if scope.parks is not None:
            conds.append("list_contains(?::VARCHAR[], park)")
            params.append(list(scope.parks))
        if scope.gw is not None:
            conds.append("gw = ?")
            params.append(scope.gw)
        if cellular and scope.operator is not None:
            conds.append("operator = ?")
            params.append(scope.operator)
        if cellular and scope.tech is not None:
            conds.append("tech = ?")
            params.append(scope.tech)
        if positioned:
            conds.append("h3 IS NOT NULL")
        if scope.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = scope.bbox
            conds.append("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?")
            params += [min_lon, max_lon, min_lat, max_lat]
        return " AND ".join(conds), params

    # -- protocol -----------------------------------------------------------------------------

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        if not 0 <= resolution <= self.ingest_resolution:
            raise ValueError(f"resolution must be 0..{self.ingest_resolution} (the ingest resolution)")
        where, params = self._where(scope, positioned=True, cellular=True)
        cell = "h3"
        cell_params: list[Any] = []
        if resolution < self.ingest_resolution:
            and_mask, or_bits = h3_parent_bits(resolution)
            cell = "((h3 & ?::UBIGINT) | ?::UBIGINT)"
            cell_params = [and_mask, or_bits]
        # The rows are fetched as Arrow columns and aggregated with numpy (see _aggregate): per-group
        # list() + list_sort() in SQL costs several times the scan on large windows. Strings are
        # the costly part of the transfer and of the encoding, so the rows carry DuckDB's 64-bit
        # hash of (park, operator, tech) and of the device instead (see _series_names).
        if not self.hashed_keys:
            return self._cell_stats_by_strings(scope, cell, cell_params, where, params)
        sql = f"""
            SELECT hash(park, operator, tech) AS series, {cell} AS h3,
                   hash(dev) AS dev, ts,
                   rsrp_dbm, rsrq_db, sinr_db
            FROM cellular WHERE {where}
        """
        table = self._fetch_arrow(sql, cell_params + params)
        if table is None or table.num_rows == 0:
            return CellStats()
        series_f = _POOL.submit(_uint_codes, table["series"])
        h3_f = _POOL.submit(_uint_codes, table["h3"])
        dev_c, dev_values = _uint_codes(table["dev"])
        series_c, hashes = series_f.result()
        series = self._series_names(hashes, where, params)
        if series is None:  # a hash collision: use the strings themselves
            return self._cell_stats_by_strings(scope, cell, cell_params, where, params)
        h3_c, cells = h3_f.result()
        # hash(NULL) is one fixed value: the code of that value stands for "no device".
        known = dev_values.filled(0) != self._null_hash()
        return _aggregate(table, series_c, series, h3_c, cells.filled(0), dev_c, known)

    def _null_hash(self) -> int:
        if self._hash_of_null is None:
            self._hash_of_null = int(self._fetch("SELECT hash(NULL::VARCHAR) AS h", [])[0]["h"])
        return self._hash_of_null

    def _series_names(
        self, hashes: np.ma.MaskedArray[Any, Any], where: str, params: list[Any]
    ) -> list[tuple[Any, ...]] | None:
        """The (park, operator, tech) behind each hash, or None if two of them share a hash.

        Names are learnt once per process from the rows of the same filter and kept (there are
        a few dozen such tuples); a new hash triggers one ``GROUP BY`` query.
        """
        wanted = [int(h) for h in hashes.filled(0)]
        if any(h not in self._series for h in wanted):
            sql = f"""
                SELECT hash(park, operator, tech) AS k, park, operator, tech
                FROM cellular WHERE {where} GROUP BY ALL
            """
            if not learn_series_names(self._series, self._fetch(sql, params)):
                # Two different keys share a hash: from now on this backend fetches the strings.
                self.hashed_keys = False
                return None
        if any(h not in self._series for h in wanted):
            return None
        return [self._series[h] for h in wanted]

    def _cell_stats_by_strings(
        self, scope: Scope, cell: str, cell_params: list[Any], where: str, params: list[Any]
    ) -> CellStats:
        """:meth:`cell_stats` over the key strings themselves (the exact fallback)."""
        # A key the scope pins to one value is not fetched per row.
        constants: dict[str, str] = {}
        if scope.parks is not None and len(scope.parks) == 1:
            constants["park"] = scope.parks[0]
        if scope.operator is not None:
            constants["operator"] = scope.operator
        if scope.tech is not None:
            constants["tech"] = scope.tech
        keys = ", ".join(k for k in ("park", "operator", "tech") if k not in constants)
        sql = f"""
            SELECT {keys}{", " if keys else ""}{cell} AS h3, dev, ts,
                   rsrp_dbm, rsrq_db, sinr_db
            FROM cellular WHERE {where}
        """
        table = self._fetch_arrow(sql, cell_params + params)
        return CellStats() if table is None else cell_stats_from_rows(table, constants=constants)

    def broadband_stats(self, scope: Scope, *, by: Literal["gw", "park"] = "gw") -> BroadbandStats:
        where, params = self._where(scope)
        gw = "gw" if by == "gw" else "'' AS gw"
        sql = f"""
            SELECT park, {gw}, count(latency_ms) AS samples,
                   {_pct("latency_ms", 50)} AS latency_p50_ms,
                   {_pct("latency_ms", 95)} AS latency_p95_ms,
                   avg(jitter_ms) AS jitter_mean_ms,
                   avg(loss_pct) AS loss_mean_pct,
                   median(down_mbps) AS down_median_mbps,
                   median(up_mbps) AS up_median_mbps,
                   count(ipv6_ok) AS ipv6_probes,
                   count(ipv6_ok) FILTER (WHERE ipv6_ok) AS ipv6_ok
            FROM broadband WHERE {where}
            GROUP BY ALL ORDER BY ALL
        """
        result: BroadbandStats = BroadbandStats.from_rows(self._fetch(sql, params))
        return result

    def buckets(
        self,
        kind: Literal["machine", "energy"] | str,
        scope: Scope,
        *,
        bucket_s: int,
        field: str = "",
        agg: Agg = "max",
    ) -> Buckets:
        if bucket_s < 1:
            raise ValueError("bucket_s must be >= 1")
        if kind not in KIND_COLUMNS or kind == "generic":
            raise ValueError(f"unknown reading kind {kind!r}")
        where, params = self._where(scope)
        width = bucket_s * 1000
        if field:
            col = numeric_field(kind, field)
            values = f"NULL AS state, {_AGG_SQL[agg]}({col}) AS a"
            having = f"count({col}) > 0"
        elif kind == "machine":
            values = (
                "arg_max(state, ts) FILTER (WHERE state IS NOT NULL) AS state, "
                "max(parts_total) AS a, max(rejects_total) AS b, min(parts_total) AS c, min(rejects_total) AS d"
            )
            having = "count(state) + count(parts_total) + count(rejects_total) > 0"
        elif kind == "energy":
            values = "NULL AS state, avg(power_kw) AS a, max(energy_kwh) AS b, min(energy_kwh) AS c"
            having = "count(power_kw) + count(energy_kwh) > 0"
        else:
            raise ValueError(f"no bucketed query for kind {kind!r} without a field")
        sql = f"""
            SELECT park, gw, dev, (epoch_ms(ts) // {width}) * {width} AS bucket_ms, {values}
            FROM {kind} WHERE {where}
            GROUP BY park, gw, dev, bucket_ms HAVING {having}
            ORDER BY park, gw, dev, bucket_ms
        """
        result: Buckets = Buckets.from_rows(self._fetch(sql, params))
        return result

    def status(self, scope: Scope, *, latest: bool) -> StatusRows:
        if latest:
            conds: list[str] = ["TRUE"]
            params: list[Any] = []
            if scope.parks is not None:
                conds.append("list_contains(?::VARCHAR[], park)")
                params.append(list(scope.parks))
            if scope.gw is not None:
                conds.append("gw = ?")
                params.append(scope.gw)
            where = " AND ".join(conds)
            tail = "QUALIFY row_number() OVER (PARTITION BY park, gw ORDER BY ts DESC) = 1 ORDER BY park, gw"
        else:
            where, params = self._where(scope)
            tail = "ORDER BY park, gw, ts"
        sql = f"SELECT epoch_ms(ts) AS ts_ms, * EXCLUDE (ts) FROM {GATEWAY_STATUS} WHERE {where} {tail}"
        result: StatusRows = StatusRows.from_rows(self._fetch(sql, params))
        return result

    def ledger(self, scope: Scope) -> LedgerRows:
        conds: list[str] = ["TRUE"]
        params: list[Any] = []
        if scope.parks is not None:
            conds.append("list_contains(?::VARCHAR[], park)")
            params.append(list(scope.parks))
        if scope.gw is not None:
            conds.append("gw = ?")
            params.append(scope.gw)
        # A file not yet opened by a newer ingester has no ingester column: one ledger per gateway.
        named = self._fetch(
            "SELECT 1 AS x FROM information_schema.columns WHERE table_name = ? AND column_name = 'ingester'",
            [LOSS_LEDGER],
        )
        per = "park, gw, ingester" if named else "park, gw"
        sql = (
            f"SELECT epoch_ms(ts) AS ts_ms, * EXCLUDE (ts) FROM {LOSS_LEDGER} WHERE {' AND '.join(conds)} "
            f"QUALIFY row_number() OVER (PARTITION BY {per} ORDER BY ts DESC) = 1"
        )
        return merge_ledger(self._fetch(sql, params))

    def data_version(self) -> tuple[Any, ...]:
        """A cheap fingerprint of the cellular table (row count and highest row id).

        Readings are only appended (and old ones deleted by retention), so an unchanged
        fingerprint means every answer computed from the table is still exact.
        """
        rows = self._fetch("SELECT count(*) AS n, max(rowid) AS last FROM cellular", [])
        return (rows[0]["n"], rows[0]["last"]) if rows else (0, None)

    def ping(self) -> None:
        self._fetch("SELECT 1", [])

    def close(self) -> None:
        if self._owned:  # a shared connection belongs to its writer
            self._con.close()
