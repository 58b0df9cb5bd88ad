"""Query backend over the embedded DuckDB store (SQL, every value a bound parameter).

H3 parents are computed inside the query with bit arithmetic on the ``UBIGINT`` cell index
(set the resolution field, fill the finer digits with 7), so a coarser grid is aggregated exactly
from the raw samples. DuckDB allows one read-write process per file: the API either shares the
ingester's connection (``parkwatch serve`` and the demo) or opens the file read-only when no writer holds it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analytics.grouped import dense_ids, stable_order
from settings.api import DuckdbQuerySettings
from storage.cell_aggregate import aggregate, cell_stats_from_rows, uint_codes
from storage.dead_letters import DeadLetterFilter, DeadLetterRow
from storage.query import (
    STATUS_CARRIED,
    Agg,
    BroadbandStats,
    CellSamples,
    CellStats,
    EnergyBuckets,
    FieldBuckets,
    LedgerRows,
    MachineBuckets,
    NetworkRows,
    QueryError,
    Scope,
    StatusRows,
    h3_parent_bits,
    merge_ledger,
    numeric_field,
)
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_COLUMNS, LOSS_LEDGER

_AGG_SQL: Final[dict[str, str]] = {"min": "min", "max": "max", "mean": "avg"}


def _pct(col: str, p: int) -> str:
    """InfluxQL's nearest-rank ``PERCENTILE(col, p)`` in DuckDB SQL (see :mod:`storage.query`)."""
    rank = f"CAST(floor(count({col}) * {p} / 100.0 + 0.5) AS BIGINT)"
    return f"CASE WHEN {rank} >= 1 THEN list_sort(list({col}) FILTER (WHERE {col} IS NOT NULL))[{rank}] END"


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


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


def ranked_strings(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]:
    """A string column as each row's rank in SQL order (NULL last, after every value) and the
    values by rank (``values[rank]`` is the column as Python objects, None for NULL).

    DuckDB compares VARCHAR byte-wise in UTF-8, which orders as Python orders ``str``.
    """
    enc = pc.dictionary_encode(col).combine_chunks()
    names: list[str] = enc.dictionary.to_pylist()
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank_of_code = np.empty(len(names) + 1, dtype=np.int64)
    rank_of_code[by_name] = np.arange(len(names))
    rank_of_code[len(names)] = len(names)
    codes = pc.fill_null(enc.indices, len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    values: npt.NDArray[np.object_] = np.array([*(names[i] for i in by_name), None, None], dtype=object)[:-1]
    return rank_of_code[codes], values


def ranked_uints(col: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """An unsigned integer column as each row's rank among its distinct values (NULL last),
    from a hash encoding and a sort of the distinct values only."""
    enc = pc.dictionary_encode(col).combine_chunks()
    values = enc.dictionary.to_numpy(zero_copy_only=False)
    rank_of_code = np.empty(len(values) + 1, dtype=np.int64)
    rank_of_code[np.argsort(values, kind="stable")] = np.arange(len(values))
    rank_of_code[len(values)] = len(values)
    codes = pc.fill_null(enc.indices, len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
    out: npt.NDArray[np.int64] = rank_of_code[codes]
    return out


def sql_order(ranks: list[npt.NDArray[np.int64]], ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """The row order of ``ORDER BY key_1, ..., key_n, ts`` (rows equal in all of them in their
    order), given each key as dense ranks ``0 .. k`` (NULL ranking last): the same permutation
    as ``np.lexsort((ts_ms, *reversed(ranks)))``.

    The keys are packed into one integer per row and numbered densely; then a stable sort by
    time and a stable radix sort by that number (several multi-key merge sorts cost ~3 times as
    much on a week of 10M readings).
    """
    sizes = [int(r.max()) + 1 if len(r) else 1 for r in ranks]
    if math.prod(sizes) >= 1 << 62:
        lex: npt.NDArray[np.intp] = np.lexsort((ts_ms, *reversed(ranks)))
        return lex
    key = np.zeros(len(ts_ms), dtype=np.int64)
    for r, size in zip(ranks, sizes, strict=True):
        key = key * size + r
    group, _ = dense_ids(key)
    by_ts = np.argsort(ts_ms, kind="stable")
    out: npt.NDArray[np.intp] = by_ts[stable_order(group[by_ts])]
    return out


@dataclass(frozen=True, slots=True)
class _KeptNetworks:
    """The networks of every stored reading of one filter, as of ``count`` rows up to row id ``last``."""

    count: int
    last: int
    rows: dict[tuple[str, str, str], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _WindowRows:
    """The positioned cellular rows of one (scope, resolution), fetched once for both the cell
    statistics and the dead-zone samples, with the key strings ranked (:func:`ranked_strings`).

    ``version`` is the window's :meth:`DuckDBQuery.data_version` read before the fetch (None on a
    read-only file, which no one else can change while it is open)."""

    key: tuple[Scope, int]
    version: tuple[Any, ...] | None
    table: pa.Table
    keys: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]]


class DuckDBQuery:
    """Aggregating reads from a DuckDB database file or an existing connection.

    Args:
        path: the database file, opened read-only (ignored when ``connection`` is given).
        connection: a connection shared with the writer in the same process.
        ingest_resolution: the H3 resolution the ingester stores (finer requests are refused).
        hashed_keys: without ``shared_fetch``, aggregate cell statistics over 64-bit hashes of
            the key strings (see :meth:`cell_stats`); False fetches the strings themselves, which
            is what the backend falls back to after a hash collision. Both give the same answer.
        shared_fetch: the cell statistics and the dead-zone samples of a window come from one
            fetch of its rows (see :meth:`_window_rows`); False runs one query for each (the
            previous way, kept as the reference of the exactness tests). Both give the same answer.
    """

    def __init__(
        self,
        *,
        path: str | Path = "",
        connection: duckdb.DuckDBPyConnection | None = None,
        ingest_resolution: int = 10,
        hashed_keys: bool = True,
        shared_fetch: bool = True,
    ) -> None:
        self.ingest_resolution = ingest_resolution
        self.hashed_keys = hashed_keys
        self.shared_fetch = shared_fetch
        self._window_kept: _WindowRows | None = None
        self._lock = threading.Lock()
        self._series: dict[int, tuple[Any, ...]] = {}
        self._hash_of_null: int | None = None
        self._ever: dict[tuple[str, str], _KeptNetworks] = {}
        self._owned = connection is None
        if connection is not None:
            self._con = connection
        else:
            try:
                self._con = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:
                raise QueryError(
                    f"cannot open DuckDB file {path}: {exc}. The ingester creates it; while an ingester "
                    "process writes it, no other process may open it: run the ingester and the API as one "
                    "process (parkwatch serve --config config/parkwatch.toml) or use InfluxDB"
                ) from exc

    @classmethod
    def from_settings(cls, settings: DuckdbQuerySettings, *, ingest_resolution: int) -> DuckDBQuery:
        """The backend of a ``[backend] type = "duckdb"`` table (the file opened read-only)."""
        return cls(path=settings.path, ingest_resolution=ingest_resolution)

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
    def _where(
        scope: Scope, *, positioned: bool = False, cellular: bool = False, timed: bool = True
    ) -> tuple[str, list[Any]]:
        conds = ["ts >= ?", "ts < ?"] if timed else ["true"]
        params: list[Any] = [_naive_utc(scope.start), _naive_utc(scope.end)] if timed else []
        if scope.parks is not None:
            conds.append("list_contains(?::VARCHAR[], park)")
            params.append(list(scope.parks))
        if scope.gw is not None:
            conds.append("gw = ?")
            params.append(scope.gw)
        if cellular and scope.operator is not None:
            # Operator names are ASCII (contract.ids.NAME): lower() is the case folding.
            conds.append("lower(operator) = lower(?)")
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
        if self.shared_fetch:
            rows = self._window_rows(scope, resolution, cell, cell_params, where, params)
            return CellStats() if rows is None else self._cell_stats_of(rows)
        # The rows are fetched as Arrow columns and aggregated with numpy (see storage.cell_aggregate): per-group
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
        series_c, hashes = uint_codes(table["series"])
        series = self._series_names(hashes, where, params)
        if series is None:  # a hash collision: use the strings themselves
            return self._cell_stats_by_strings(scope, cell, cell_params, where, params)
        h3_c, cells = uint_codes(table["h3"])
        dev_c, dev_values = uint_codes(table["dev"])
        # hash(NULL) is one fixed value: the code of that value stands for "no device".
        known = dev_values.filled(0) != self._null_hash()
        return aggregate(table, series_c, series, h3_c, cells.filled(0), dev_c, known)

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        if not 0 <= resolution <= self.ingest_resolution:
            raise ValueError(f"resolution must be 0..{self.ingest_resolution} (the ingest resolution)")
        where, params = self._where(scope, positioned=True, cellular=True)
        cell = "h3"
        cell_params: list[Any] = []
        if resolution < self.ingest_resolution:
            and_mask, or_bits = h3_parent_bits(resolution)
            cell = "((h3 & ?::UBIGINT) | ?::UBIGINT)"
            cell_params = [and_mask, or_bits]
        if self.shared_fetch:
            rows = self._window_rows(scope, resolution, cell, cell_params, where, params)
            return CellSamples() if rows is None else self._cell_samples_of(rows)
        # Sorted here rather than by ORDER BY, and strings built from each column's few
        # distinct values: on a week of 10M readings (~830,000 rows) DuckDB's sort and Arrow's
        # per-row string objects cost ~0.45 s and ~0.55 s, their replacements a tenth of that.
        sql = f"""
            SELECT park, {cell} AS h3, operator, tech, dev, epoch_ms(ts) AS ts_ms,
                   lat, lon, rsrp_dbm, sinr_db, cell_id::DOUBLE AS cell_id, pci::DOUBLE AS pci
            FROM cellular WHERE {where} AND rsrp_dbm IS NOT NULL
        """
        table = self._fetch_arrow(sql, cell_params + params)
        if table is None or table.num_rows == 0:
            return CellSamples()
        keys = {name: ranked_strings(table[name]) for name in ("park", "operator", "tech", "dev")}
        h3 = table["h3"].to_numpy().astype(np.uint64)
        ts_ms = table["ts_ms"].to_numpy().astype(np.int64)
        order = sql_order(
            [
                keys["park"][0],
                ranked_uints(table["h3"]),
                keys["operator"][0],
                keys["tech"][0],
                keys["dev"][0],
            ],
            ts_ms,
        )

        def num(name: str) -> npt.NDArray[np.float64]:
            out: npt.NDArray[np.float64] = table[name].to_numpy().astype(np.float64)[order]
            return out

        def strings(name: str) -> npt.NDArray[np.object_]:
            rank, values = keys[name]
            out: npt.NDArray[np.object_] = values[rank[order]]
            return out

        return CellSamples(
            park=strings("park"),
            h3=h3[order],
            operator=strings("operator"),
            tech=strings("tech"),
            dev=strings("dev"),
            ts_ms=ts_ms[order],
            lat=num("lat"),
            lon=num("lon"),
            rsrp_dbm=num("rsrp_dbm"),
            sinr_db=num("sinr_db"),
            cell_id=num("cell_id"),
            pci=num("pci"),
        )

    def _window_rows(
        self, scope: Scope, resolution: int, cell: str, cell_params: list[Any], where: str, params: list[Any]
    ) -> _WindowRows | None:
        """The rows of ``scope`` at ``resolution`` for :meth:`cell_stats` and :meth:`cell_samples`
        (None: no rows), from one query for both.

        A first request for a window computes both (the statistics, then the dead-zone test over
        the samples): the rows of the last fetch are kept for the other of the two and handed
        out once, if the window's :meth:`data_version` is still the one read before the fetch
        (an append or delete in the window makes the other one fetch anew). The samples are the
        rows with an RSRP, in the same scan order, so both answers are those of their own query.
        """
        key = (scope, resolution)
        with self._lock:
            kept, self._window_kept = self._window_kept, None
        if (
            kept is not None
            and kept.key == key
            and (kept.version is None or kept.version == self.data_version(scope))
        ):
            return kept
        version = None if self._owned else self.data_version(scope)
        # A key the filter pins to one value (equal strings) is not fetched per row; the operator
        # filter ignores case, so the operator column is always fetched.
        constants: dict[str, str] = {}
        if scope.parks is not None and len(scope.parks) == 1:
            constants["park"] = scope.parks[0]
        if scope.tech is not None:
            constants["tech"] = scope.tech
        fetched = "".join(f"{k}, " for k in ("park", "tech") if k not in constants)
        sql = f"""
            SELECT {fetched}{cell} AS h3, operator, dev, ts, epoch_ms(ts) AS ts_ms,
                   lat, lon, rsrp_dbm, rsrq_db, sinr_db, cell_id::DOUBLE AS cell_id, pci::DOUBLE AS pci
            FROM cellular WHERE {where}
        """
        table = self._fetch_arrow(sql, cell_params + params)
        if table is None or table.num_rows == 0:
            return None
        keys = {
            name: (
                (np.zeros(table.num_rows, dtype=np.int64), np.array([constants[name], None], dtype=object))
                if name in constants
                else ranked_strings(table[name])
            )
            for name in ("park", "operator", "tech", "dev")
        }
        rows = _WindowRows(key=key, version=version, table=table, keys=keys)
        with self._lock:
            self._window_kept = rows
        return rows

    @staticmethod
    def _cell_stats_of(rows: _WindowRows) -> CellStats:
        """:meth:`cell_stats` of a window's rows: the key codes are the ranks of the strings (the
        same groups as the strings themselves, so no hash collision to guard against)."""
        (park_r, park_v), (op_r, op_v), (tech_r, tech_v) = (
            rows.keys[k] for k in ("park", "operator", "tech")
        )
        series_c, n_series = dense_ids((park_r * len(op_v) + op_r) * len(tech_v) + tech_r)
        first = np.empty(n_series, dtype=np.int64)  # a row of each series (all have its strings)
        first[series_c] = np.arange(len(series_c))
        series = list(zip(park_v[park_r[first]], op_v[op_r[first]], tech_v[tech_r[first]], strict=True))
        h3_c, cells = uint_codes(rows.table["h3"])
        dev_r, dev_v = rows.keys["dev"]
        # ranked_strings ranks NULL last: the last value is "no device".
        known = np.arange(len(dev_v)) < len(dev_v) - 1
        return aggregate(rows.table, series_c, series, h3_c, cells.filled(0), dev_r, known)

    @staticmethod
    def _cell_samples_of(rows: _WindowRows) -> CellSamples:
        """:meth:`cell_samples` of a window's rows: those with an RSRP, in ``ORDER BY`` order."""
        table = rows.table
        if table["rsrp_dbm"].null_count == 0:
            sel: npt.NDArray[np.intp] | slice = slice(None)  # every row (no copy)
        else:
            sel = np.flatnonzero(pc.is_valid(table["rsrp_dbm"]).to_numpy(zero_copy_only=False))
            if len(sel) == 0:
                return CellSamples()
        ranks = {name: rank[sel] for name, (rank, _) in rows.keys.items()}
        h3 = table["h3"].to_numpy().astype(np.uint64, copy=False)[sel]
        ts_ms = table["ts_ms"].to_numpy().astype(np.int64, copy=False)[sel]
        order = sql_order(
            [ranks["park"], ranked_uints(table["h3"])[sel], ranks["operator"], ranks["tech"], ranks["dev"]],
            ts_ms,
        )
        at = order if isinstance(sel, slice) else sel[order]

        def num(name: str) -> npt.NDArray[np.float64]:
            out: npt.NDArray[np.float64] = table[name].to_numpy().astype(np.float64, copy=False)[at]
            return out

        def strings(name: str) -> npt.NDArray[np.object_]:
            rank, values = rows.keys[name]
            out: npt.NDArray[np.object_] = values[rank[at]]
            return out

        return CellSamples(
            park=strings("park"),
            h3=h3[order],
            operator=strings("operator"),
            tech=strings("tech"),
            dev=strings("dev"),
            ts_ms=ts_ms[order],
            lat=num("lat"),
            lon=num("lon"),
            rsrp_dbm=num("rsrp_dbm"),
            sinr_db=num("sinr_db"),
            cell_id=num("cell_id"),
            pci=num("pci"),
        )

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

    _NETWORKS_SQL: Final = """
        SELECT park, operator, tech, count(*) AS samples, epoch_ms(max(ts)) AS last_ms
        FROM cellular
        WHERE {where} AND rsrp_dbm IS NOT NULL AND park IS NOT NULL
          AND operator IS NOT NULL AND tech IS NOT NULL
        GROUP BY park, operator, tech ORDER BY park, operator, tech
    """

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        where, params = self._where(scope, cellular=True, timed=timed)
        if not timed:
            return self._networks_ever(where, params)
        result: NetworkRows = NetworkRows.from_rows(
            self._fetch(self._NETWORKS_SQL.format(where=where), params)
        )
        return result

    def _networks_ever(self, where: str, params: list[Any]) -> NetworkRows:
        """:meth:`networks` over every stored reading, kept per filter and brought up to date
        from the rows appended since (by row id) instead of a scan of the whole table.

        Appended rows get row ids above every stored one; when the table's count grew by exactly
        the rows between the kept and the current highest row id, nothing was deleted and the
        kept counts plus those rows' are the answer. Anything else (a retention delete) is
        answered by the full query. On 10M readings the full query costs ~0.4-1.2 s, the
        update a few ms per thousand new rows.
        """
        version = self._fetch("SELECT count(*) AS n, max(rowid) AS last FROM cellular", [])
        if not version or version[0]["last"] is None:
            return NetworkRows()
        count, last = int(version[0]["n"]), int(version[0]["last"])
        key = (where, repr(params))
        with self._lock:
            kept = self._ever.get(key)
        rows: dict[tuple[str, str, str], tuple[int, int]] | None = None
        if kept is not None and kept.last <= last:
            if kept.count == count and kept.last == last:
                rows = kept.rows
            else:
                span = "rowid > ? AND rowid <= ?"
                added = self._fetch(f"SELECT count(*) AS n FROM cellular WHERE {span}", [kept.last, last])
                if added and kept.count + int(added[0]["n"]) == count:
                    rows = dict(kept.rows)
                    new = self._fetch(
                        self._NETWORKS_SQL.format(where=f"{span} AND {where}"), [kept.last, last, *params]
                    )
                    for r in new:
                        k = (r["park"], r["operator"], r["tech"])
                        samples, last_ms = rows.get(k, (0, int(r["last_ms"])))
                        rows[k] = (samples + int(r["samples"]), max(last_ms, int(r["last_ms"])))
        if rows is None:
            # Bounded by the same row id, so that the next update starts where this one ends.
            full = self._fetch(self._NETWORKS_SQL.format(where=f"rowid <= ? AND {where}"), [last, *params])
            rows = {
                (r["park"], r["operator"], r["tech"]): (int(r["samples"]), int(r["last_ms"])) for r in full
            }
            counted = self._fetch("SELECT count(*) AS n FROM cellular WHERE rowid <= ?", [last])
            count = int(counted[0]["n"]) if counted else count
        with self._lock:
            self._ever[key] = _KeptNetworks(count=count, last=last, rows=rows)
            while len(self._ever) > 64:
                self._ever.pop(next(iter(self._ever)))
        result: NetworkRows = NetworkRows.from_rows(
            [
                {"park": k[0], "operator": k[1], "tech": k[2], "samples": v[0], "last_ms": v[1]}
                for k, v in sorted(rows.items())
            ]
        )
        return result

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

    def _buckets(
        self, kind: str, scope: Scope, *, bucket_s: int, values: str, having: str
    ) -> list[dict[str, Any]]:
        """Rows of ``values`` per (park, gw, dev, bucket of ``bucket_s``) of the ``kind`` table."""
        if bucket_s < 1:
            raise ValueError("bucket_s must be >= 1")
        if kind not in KIND_COLUMNS or kind == "generic":
            raise ValueError(f"unknown reading kind {kind!r}")
        where, params = self._where(scope)
        width = bucket_s * 1000
        sql = f"""
            SELECT park, gw, dev, (epoch_ms(ts) // {width}) * {width} AS bucket_ms, {values}
            FROM {kind} WHERE {where}
            GROUP BY park, gw, dev, bucket_ms HAVING {having}
            ORDER BY park, gw, dev, bucket_ms
        """
        return self._fetch(sql, params)

    def machine_buckets(self, scope: Scope, *, bucket_s: int) -> MachineBuckets:
        values = (
            "arg_max(state, ts) FILTER (WHERE state IS NOT NULL) AS state, "
            "min(parts_total) AS parts_total_min, max(parts_total) AS parts_total_max, "
            "min(rejects_total) AS rejects_total_min, max(rejects_total) AS rejects_total_max"
        )
        having = "count(state) + count(parts_total) + count(rejects_total) > 0"
        rows = self._buckets("machine", scope, bucket_s=bucket_s, values=values, having=having)
        result: MachineBuckets = MachineBuckets.from_rows(rows)
        return result

    def energy_buckets(self, scope: Scope, *, bucket_s: int) -> EnergyBuckets:
        values = (
            "avg(power_kw) AS power_mean_kw, min(energy_kwh) AS energy_min_kwh, "
            "max(energy_kwh) AS energy_max_kwh"
        )
        having = "count(power_kw) + count(energy_kwh) > 0"
        rows = self._buckets("energy", scope, bucket_s=bucket_s, values=values, having=having)
        result: EnergyBuckets = EnergyBuckets.from_rows(rows)
        return result

    def field_buckets(self, kind: str, scope: Scope, *, bucket_s: int, field: str, agg: Agg) -> FieldBuckets:
        if kind not in KIND_COLUMNS or kind == "generic":
            raise ValueError(f"unknown reading kind {kind!r}")
        col = numeric_field(kind, field)
        rows = self._buckets(
            kind,
            scope,
            bucket_s=bucket_s,
            values=f"{_AGG_SQL[agg]}({col}) AS value",
            having=f"count({col}) > 0",
        )
        result: FieldBuckets = FieldBuckets.from_rows(rows)
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
            carried = ", ".join(f"last_value({c} IGNORE NULLS) OVER past AS {c}" for c in STATUS_CARRIED)
            sql = (
                f"SELECT epoch_ms(ts) AS ts_ms, * EXCLUDE (ts, {', '.join(STATUS_CARRIED)}), {carried} "
                f"FROM {GATEWAY_STATUS} WHERE {where} "
                "WINDOW past AS (PARTITION BY park, gw ORDER BY ts ROWS UNBOUNDED PRECEDING) "
                "QUALIFY row_number() OVER (PARTITION BY park, gw ORDER BY ts DESC) = 1 ORDER BY park, gw"
            )
            latest_rows: StatusRows = StatusRows.from_rows(self._fetch(sql, params))
            return latest_rows
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

    def dead_letters(self, scope: Scope, flt: DeadLetterFilter) -> list[DeadLetterRow]:
        where, params = self._where(scope)
        if flt.prefix is not None:
            where += " AND starts_with(reason, ?)"
            params.append(flt.prefix)
        rows = self._fetch(
            f"SELECT epoch_ms(ts) AS ts_ms, park, gw, topic, reason, raw FROM {DEAD_LETTER} WHERE {where} "
            "ORDER BY ts DESC, gw, reason LIMIT ? OFFSET ?",
            [*params, flt.limit, flt.offset],
        )
        return [
            DeadLetterRow(
                ts_ms=int(r["ts_ms"]),
                park=r["park"] or "",
                gw=r["gw"] or "",
                topic=r["topic"] or "",
                reason=r["reason"] or "",
                raw=r["raw"] or "",
            )
            for r in rows
        ]

    def data_version(self, scope: Scope | None = None) -> tuple[Any, ...]:
        """A cheap fingerprint of the cellular table (row count and highest row id), or of the
        rows of the ``scope``'s time window.

        Readings are only appended (and old ones deleted by retention), so an unchanged
        fingerprint means every answer computed from the table is still exact. Appended rows get
        row ids above every stored one: a row appended inside the window raises its highest row
        id, a deleted one lowers its count. So the answers over a window of the past outlive an
        ingester appending live readings. Reading it costs a scan of the window's ``ts`` column
        (row groups outside it are skipped by their zone maps): ~10-20 ms for a week of 10M rows.
        """
        if scope is not None:
            rows = self._fetch(
                "SELECT count(*) AS n, max(rowid) AS last FROM cellular WHERE ts >= ? AND ts < ?",
                [_naive_utc(scope.start), _naive_utc(scope.end)],
            )
            return (rows[0]["n"], rows[0]["last"]) if rows else (0, None)
        rows = self._fetch("SELECT count(*) AS n, max(rowid) AS last FROM cellular", [])
        return (rows[0]["n"], rows[0]["last"]) if rows else (0, None)

    def ping(self) -> None:
        self._fetch("SELECT 1", [])

    def close(self) -> None:
        if self._owned:  # a shared connection belongs to its writer
            self._con.close()
