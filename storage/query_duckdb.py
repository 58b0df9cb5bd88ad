"""Query backend over the embedded DuckDB store (SQL, every value a bound parameter).

H3 parents are computed inside the query with bit arithmetic on the ``UBIGINT`` cell index
(set the resolution field, fill the finer digits with 7), so a coarser grid is aggregated exactly
from the raw samples. DuckDB allows one read-write process per file: the API either shares the
ingester's connection (the embedded demo) or opens the file read-only when no writer holds it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import duckdb

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
    numeric_field,
)
from storage.schema import GATEWAY_STATUS, KIND_COLUMNS, LOSS_LEDGER

_AGG_SQL: Final[dict[str, str]] = {"min": "min", "max": "max", "mean": "avg"}


def _pct(col: str, p: int) -> str:
    """InfluxQL's nearest-rank ``PERCENTILE(col, p)`` in DuckDB SQL (see :mod:`storage.query`)."""
    rank = f"CAST(floor(count({col}) * {p} / 100.0 + 0.5) AS BIGINT)"
    return f"CASE WHEN {rank} >= 1 THEN list_sort(list({col}) FILTER (WHERE {col} IS NOT NULL))[{rank}] END"


def _rank(lst: str, p: int) -> str:
    """Nearest-rank percentile ``p`` of a sorted list (InfluxQL's rule, see :mod:`storage.query`)."""
    rank = f"CAST(floor(len({lst}) * {p} / 100.0 + 0.5) AS BIGINT)"
    return f"CASE WHEN {rank} >= 1 THEN {lst}[{rank}] END"


def _median(lst: str) -> str:
    """Interpolated median of a sorted list (the mean of the two middle values when even)."""
    return (
        f"CASE WHEN len({lst}) > 0 THEN ({lst}[(len({lst}) + 1) // 2] + {lst}[len({lst}) // 2 + 1]) / 2 END"
    )


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


class DuckDBQuery:
    """Aggregating reads from a DuckDB database file or an existing connection.

    Args:
        path: the database file, opened read-only (ignored when ``connection`` is given).
        connection: a connection shared with the writer in the same process.
        ingest_resolution: the H3 resolution the ingester stores (finer requests are refused).
    """

    def __init__(
        self,
        *,
        path: str | Path = "",
        connection: duckdb.DuckDBPyConnection | None = None,
        ingest_resolution: int = 10,
    ) -> None:
        self.ingest_resolution = ingest_resolution
        self._lock = threading.Lock()
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
        # One sorted list per metric and group gives both its p10 and its median (one sort each).
        sql = f"""
            WITH g AS (
                SELECT park, {cell} AS h3, operator, tech,
                       list_sort(list(rsrp_dbm) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS lr,
                       list_sort(list(rsrq_db) FILTER (WHERE rsrq_db IS NOT NULL)) AS lq,
                       list_sort(list(sinr_db) FILTER (WHERE sinr_db IS NOT NULL)) AS ls,
                       count(DISTINCT dev) FILTER (WHERE rsrp_dbm IS NOT NULL) AS devices,
                       epoch_ms(min(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS first_ms,
                       epoch_ms(max(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS last_ms
                FROM cellular WHERE {where}
                GROUP BY ALL HAVING count(rsrp_dbm) > 0
            )
            SELECT park, h3, operator, tech, len(lr) AS samples, devices,
                   {_rank("lr", 10)} AS rsrp_p10_dbm, {_median("lr")} AS rsrp_median_dbm,
                   {_median("lq")} AS rsrq_median_db,
                   {_rank("ls", 10)} AS sinr_p10_db, {_median("ls")} AS sinr_median_db,
                   first_ms, last_ms
            FROM g ORDER BY park, h3, operator, tech
        """
        result: CellStats = CellStats.from_rows(self._fetch(sql, cell_params + params))
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
        sql = (
            f"SELECT epoch_ms(ts) AS ts_ms, * EXCLUDE (ts) FROM {LOSS_LEDGER} WHERE {' AND '.join(conds)} "
            "QUALIFY row_number() OVER (PARTITION BY park, gw ORDER BY ts DESC) = 1 ORDER BY park, gw"
        )
        result: LedgerRows = LedgerRows.from_rows(self._fetch(sql, params))
        return result

    def ping(self) -> None:
        self._fetch("SELECT 1", [])

    def close(self) -> None:
        if self._owned:  # a shared connection belongs to its writer
            self._con.close()
