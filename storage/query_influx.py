"""Query backend over InfluxDB's v1-compatible ``/query`` (InfluxQL), for 1.x, 2.x (DBRP) and 3.x.

No request value is pasted raw into InfluxQL: identifiers are fixed names or checked against the
storage schema and double-quoted; tag values are string literals with ``\\`` and ``'`` escaped;
times are integer nanoseconds; coordinates are Python floats. InfluxDB answers 200 with an
``error`` inside ``results[i]``; that becomes a :class:`QueryError` too.

H3 cells are a tag at the ingest resolution, and InfluxQL cannot compute an H3 parent, so a
coarser grid is rolled up from the child cells here: samples add up, distinct devices are exact
(the per-device series of the children are merged), first/last seen are min/max, and each
percentile or median is the sample-weighted mean of the children's values (an approximation;
the DuckDB backend computes the coarse percentiles exactly from the raw samples).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable
from datetime import datetime
from typing import Any, Final, Literal

import httpx
import numpy as np

from settings.api import InfluxQuerySettings
from storage.dead_letters import DeadLetterFilter, DeadLetterRow
from storage.influx_http import quote_ident, quote_literal
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

_AGG_QL: Final[dict[str, str]] = {"min": "MIN", "max": "MAX", "mean": "MEAN"}
_CELL_VALUES: Final = ("rsrp_p10_dbm", "rsrp_median_dbm", "rsrq_median_db", "sinr_p10_db", "sinr_median_db")


def ci_regex(value: str) -> str:
    """An InfluxQL regex literal matching exactly ``value`` in any letter case.

    Letters become ``[aA]`` classes rather than a ``(?i)`` flag, punctuation is escaped (``/``
    too, which would end the literal) and the match is anchored at both ends of the text.
    """
    out = []
    for ch in value:
        if not (ch.isascii() and ch.isprintable()):
            # Operator names are ASCII (contract.ids.NAME), as DuckDB's lower() match assumes.
            raise ValueError(f"operator {value!r} holds a character outside printable ASCII")
        if ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch.isdigit() or ch == " ":
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "/^" + "".join(out) + "\\z/"


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000) * 1000


def _num(x: float) -> str:
    if not math.isfinite(x):
        raise ValueError("coordinates must be finite numbers")
    return repr(float(x))


class InfluxQuery:
    """Aggregating InfluxQL reads over HTTP.

    Args:
        url: base URL of the server.
        database: database (or DBRP-mapped bucket); retention_policy: optional RP to read.
        token: API token (2.x/3.x); username/password: v1 authentication.
        ingest_resolution: the H3 resolution of the ``h3`` tag.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        *,
        url: str = "http://127.0.0.1:8086",
        database: str = "parkwatch",
        retention_policy: str = "",
        token: str = "",
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        ingest_resolution: int = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._params = {"db": database, "epoch": "ms"}
        if retention_policy:
            self._params["rp"] = retention_policy
        if username:
            self._params |= {"u": username, "p": password}
        self._rp = quote_ident(retention_policy) + "." if retention_policy else ""
        self.ingest_resolution = ingest_resolution
        self._client = httpx.Client(base_url=url, headers=headers, timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, settings: InfluxQuerySettings, *, ingest_resolution: int) -> InfluxQuery:
        """The backend of a ``[backend] type = "influxdb"`` table."""
        return cls(
            url=settings.url,
            database=settings.database,
            retention_policy=settings.retention_policy,
            token=settings.token,
            username=settings.username,
            password=settings.password,
            timeout_s=settings.timeout_s,
            ingest_resolution=ingest_resolution,
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _query(self, statements: list[str]) -> list[list[dict[str, Any]]]:
        """Run statements; per statement, its series as ``{"tags", "columns", "values"}``."""
        try:
            resp = self._client.post("/query", params=self._params, data={"q": ";\n".join(statements)})
        except httpx.HTTPError as exc:
            raise QueryError(f"InfluxDB at {self._client.base_url} is unreachable: {exc}") from exc
        try:
            body = resp.json()
        except ValueError as exc:
            raise QueryError(f"InfluxDB answered {resp.status_code} without JSON") from exc
        if resp.status_code != 200 or "error" in body:
            raise QueryError(f"InfluxDB answered {resp.status_code}: {body.get('error', body)}")
        out: list[list[dict[str, Any]]] = []
        for res in body.get("results", []):
            if "error" in res:
                if "database not found" in str(res["error"]):
                    out.append([])
                    continue
                raise QueryError(f"InfluxQL error: {res['error']}")
            if res.get("partial") or any(x.get("partial") for x in res.get("series", [])):
                # InfluxDB truncated the answer (its max-row-limit); a partial grid would be wrong.
                raise QueryError(
                    "InfluxDB truncated the answer: raise [http] max-row-limit or narrow the query"
                )
            out.append(res.get("series", []))
        while len(out) < len(statements):
            out.append([])
        return out

    @staticmethod
    def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for s in series:
            tags = s.get("tags") or {}
            for values in s.get("values", []):
                row = dict(zip(s["columns"], values, strict=True))
                for k, v in tags.items():
                    row.setdefault(k, v)
                    if row[k] in (None, ""):
                        row[k] = v
                rows.append(row)
        return rows

    def _from(self, measurement: str) -> str:
        return self._rp + quote_ident(measurement)

    def _where(
        self, scope: Scope, *, positioned: bool = False, cellular: bool = False, timed: bool = True
    ) -> str:
        conds = [f"time >= {_ns(scope.start)}", f"time < {_ns(scope.end)}"] if timed else []
        if scope.parks is not None:
            if not scope.parks:
                conds.append("park = '' AND park != ''")
            else:
                conds.append("(" + " OR ".join(f"park = {quote_literal(p)}" for p in scope.parks) + ")")
        if scope.gw is not None:
            conds.append(f"gw = {quote_literal(scope.gw)}")
        if cellular and scope.operator is not None:
            conds.append(f"operator =~ {ci_regex(scope.operator)}")
        if cellular and scope.tech is not None:
            conds.append(f"tech = {quote_literal(scope.tech)}")
        if positioned:
            conds.append("h3 != ''")
        if scope.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = scope.bbox
            conds.append(
                f"lon >= {_num(min_lon)} AND lon <= {_num(max_lon)} AND lat >= {_num(min_lat)} AND lat <= {_num(max_lat)}"
            )
        return " AND ".join(conds) if conds else "true"

    # -- protocol -----------------------------------------------------------------------------

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        if not 0 <= resolution <= self.ingest_resolution:
            raise ValueError(f"resolution must be 0..{self.ingest_resolution} (the ingest resolution)")
        w = self._where(scope, positioned=True, cellular=True)
        src = self._from("cellular")
        groups = "park, h3, operator, tech"
        stats, per_dev, first, last = self._query(
            [
                "SELECT COUNT(rsrp_dbm) AS samples, PERCENTILE(rsrp_dbm, 10) AS rsrp_p10_dbm, "
                "MEDIAN(rsrp_dbm) AS rsrp_median_dbm, MEDIAN(rsrq_db) AS rsrq_median_db, "
                "PERCENTILE(sinr_db, 10) AS sinr_p10_db, MEDIAN(sinr_db) AS sinr_median_db "
                f"FROM {src} WHERE {w} GROUP BY {groups}",
                f"SELECT COUNT(rsrp_dbm) AS n FROM {src} WHERE {w} GROUP BY {groups}, dev",
                f"SELECT FIRST(rsrp_dbm) FROM {src} WHERE {w} GROUP BY {groups}",
                f"SELECT LAST(rsrp_dbm) FROM {src} WHERE {w} GROUP BY {groups}",
            ]
        )

        def key(row: dict[str, Any]) -> tuple[str, int, str, str]:
            return (row["park"], int(row["h3"], 16), row["operator"], row["tech"])

        devs: dict[tuple[str, int, str, str], set[str]] = defaultdict(set)
        for r in self._rows(per_dev):
            if r["n"]:
                devs[key(r)].add(r["dev"])
        firsts = {key(r): int(r["time"]) for r in self._rows(first)}
        lasts = {key(r): int(r["time"]) for r in self._rows(last)}
        rows = []
        for r in self._rows(stats):
            if not r["samples"]:
                continue
            k = key(r)
            rows.append(
                {
                    **{c: r.get(c) for c in ("samples", *_CELL_VALUES)},
                    "park": k[0],
                    "h3": k[1],
                    "operator": k[2],
                    "tech": k[3],
                    "devices": len(devs[k]),
                    "_devs": devs[k],
                    "first_ms": firsts.get(k, 0),
                    "last_ms": lasts.get(k, 0),
                }
            )
        if resolution < self.ingest_resolution:
            rows = _rollup(rows, resolution)
        rows.sort(key=lambda r: (r["park"], r["h3"], r["operator"], r["tech"]))
        result: CellStats = CellStats.from_rows(rows)
        return result

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        if not 0 <= resolution <= self.ingest_resolution:
            raise ValueError(f"resolution must be 0..{self.ingest_resolution} (the ingest resolution)")
        w = self._where(scope, positioned=True, cellular=True)
        (series,) = self._query(
            [
                f"SELECT rsrp_dbm, sinr_db, lat, lon, cell_id, pci FROM {self._from('cellular')} "
                f"WHERE {w} AND rsrp_dbm > -1000 GROUP BY park, h3, operator, tech, dev"
            ]
        )
        rows = self._rows(series)
        if not rows:
            return CellSamples()
        and_mask, or_bits = h3_parent_bits(resolution)
        for r in rows:
            cell = int(r["h3"], 16)
            r["h3"] = cell if resolution == self.ingest_resolution else (cell & and_mask) | or_bits
            r["ts_ms"] = int(r["time"])
            r["dev"] = r.get("dev") or None
        rows.sort(key=lambda r: (r["park"], r["h3"], r["operator"], r["tech"], r["dev"] or "", r["ts_ms"]))
        samples: CellSamples = CellSamples.from_rows(rows)
        return samples

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        w = self._where(scope, cellular=True, timed=timed)
        src = self._from("cellular")
        groups = "park, operator, tech"
        counts, last = self._query(
            [
                f"SELECT COUNT(rsrp_dbm) AS samples FROM {src} WHERE {w} GROUP BY {groups}",
                f"SELECT LAST(rsrp_dbm) FROM {src} WHERE {w} GROUP BY {groups}",
            ]
        )

        def key(row: dict[str, Any]) -> tuple[str, str, str]:
            return (row["park"], row["operator"], row["tech"])

        lasts = {key(r): int(r["time"]) for r in self._rows(last)}
        rows = [
            {
                "park": k[0],
                "operator": k[1],
                "tech": k[2],
                "samples": int(r["samples"]),
                "last_ms": lasts.get(k, 0),
            }
            for r in self._rows(counts)
            if r["samples"] and (k := key(r))[0] and k[1] and k[2]
        ]
        rows.sort(key=lambda r: (r["park"], r["operator"], r["tech"]))
        result: NetworkRows = NetworkRows.from_rows(rows)
        return result

    def broadband_stats(self, scope: Scope, *, by: Literal["gw", "park"] = "gw") -> BroadbandStats:
        w = self._where(scope)
        src = self._from("broadband")
        groups = "park, gw" if by == "gw" else "park"
        stats, ok6 = self._query(
            [
                "SELECT COUNT(latency_ms) AS samples, PERCENTILE(latency_ms, 50) AS latency_p50_ms, "
                "PERCENTILE(latency_ms, 95) AS latency_p95_ms, MEAN(jitter_ms) AS jitter_mean_ms, "
                "MEAN(loss_pct) AS loss_mean_pct, MEDIAN(down_mbps) AS down_median_mbps, "
                "MEDIAN(up_mbps) AS up_median_mbps, COUNT(ipv6_ok) AS ipv6_probes "
                f"FROM {src} WHERE {w} GROUP BY {groups}",
                f"SELECT COUNT(ipv6_ok) AS ipv6_ok FROM {src} WHERE {w} AND ipv6_ok = true GROUP BY {groups}",
            ]
        )
        ok = {(r["park"], r.get("gw", "")): r["ipv6_ok"] for r in self._rows(ok6)}
        rows = []
        for r in self._rows(stats):
            r.setdefault("gw", "")
            if by == "park":
                r["gw"] = ""
            r["ipv6_ok"] = ok.get((r["park"], r["gw"]), 0)
            rows.append(r)
        rows.sort(key=lambda r: (r["park"], r["gw"]))
        result: BroadbandStats = BroadbandStats.from_rows(rows)
        return result

    def _buckets(self, kind: str, scope: Scope, *, bucket_s: int, values: str) -> list[dict[str, Any]]:
        """Rows of ``values`` per (park, gw, dev, bucket of ``bucket_s``) of the ``kind`` measurement."""
        if bucket_s < 1:
            raise ValueError("bucket_s must be >= 1")
        if kind not in KIND_COLUMNS or kind == "generic":
            raise ValueError(f"unknown reading kind {kind!r}")
        (series,) = self._query(
            [
                f"SELECT {values} FROM {self._from(kind)} WHERE {self._where(scope)} "
                f"GROUP BY time({bucket_s}s), park, gw, dev fill(none)"
            ]
        )
        rows = [{**r, "bucket_ms": r["time"]} for r in self._rows(series)]
        rows.sort(key=lambda r: (r["park"], r["gw"], r["dev"], r["bucket_ms"]))
        return rows

    def machine_buckets(self, scope: Scope, *, bucket_s: int) -> MachineBuckets:
        values = (
            "LAST(state) AS state, MIN(parts_total) AS parts_total_min, MAX(parts_total) AS parts_total_max, "
            "MIN(rejects_total) AS rejects_total_min, MAX(rejects_total) AS rejects_total_max"
        )
        result: MachineBuckets = MachineBuckets.from_rows(
            self._buckets("machine", scope, bucket_s=bucket_s, values=values)
        )
        return result

    def energy_buckets(self, scope: Scope, *, bucket_s: int) -> EnergyBuckets:
        values = (
            "MEAN(power_kw) AS power_mean_kw, MIN(energy_kwh) AS energy_min_kwh, "
            "MAX(energy_kwh) AS energy_max_kwh"
        )
        result: EnergyBuckets = EnergyBuckets.from_rows(
            self._buckets("energy", scope, bucket_s=bucket_s, values=values)
        )
        return result

    def field_buckets(self, kind: str, scope: Scope, *, bucket_s: int, field: str, agg: Agg) -> FieldBuckets:
        if kind not in KIND_COLUMNS or kind == "generic":
            raise ValueError(f"unknown reading kind {kind!r}")
        values = f"{_AGG_QL[agg]}({quote_ident(numeric_field(kind, field))}) AS value"
        result: FieldBuckets = FieldBuckets.from_rows(
            self._buckets(kind, scope, bucket_s=bucket_s, values=values)
        )
        return result

    def status(self, scope: Scope, *, latest: bool) -> StatusRows:
        if latest:
            where = self._where(scope, timed=False)
            q = f"SELECT * FROM {self._from(GATEWAY_STATUS)} WHERE {where} GROUP BY park, gw ORDER BY time DESC LIMIT 1"
            # last() of each field is its newest non-null value: what an offline status lacks.
            carried = ", ".join(f"last({quote_ident(c)}) AS {quote_ident(c)}" for c in STATUS_CARRIED)
            series, known = self._query(
                [q, f"SELECT {carried} FROM {self._from(GATEWAY_STATUS)} WHERE {where} GROUP BY park, gw"]
            )
            before = {(r["park"], r["gw"]): r for r in self._rows(known)}
            rows = []
            for r in self._rows(series):
                old = before.get((r["park"], r["gw"]), {})
                filled = {c: old.get(c) for c in STATUS_CARRIED if r.get(c) is None}
                rows.append({**r, **filled, "ts_ms": r["time"]})
        else:
            q = f"SELECT * FROM {self._from(GATEWAY_STATUS)} WHERE {self._where(scope)} GROUP BY park, gw"
            (series,) = self._query([q])
            rows = [{**r, "ts_ms": r["time"]} for r in self._rows(series)]
        rows.sort(key=lambda r: (r["park"], r["gw"], r["ts_ms"]))
        result: StatusRows = StatusRows.from_rows(rows)
        return result

    def ledger(self, scope: Scope) -> LedgerRows:
        (series,) = self._query(
            [
                f"SELECT * FROM {self._from(LOSS_LEDGER)} WHERE {self._where(scope, timed=False)} "
                "GROUP BY park, gw, ingester ORDER BY time DESC LIMIT 1"
            ]
        )
        return merge_ledger([{**r, "ts_ms": r["time"]} for r in self._rows(series)])

    def data_version(self, scope: Scope | None = None) -> Hashable | None:
        """None: InfluxDB has no cheap fingerprint of a measurement; answers expire by their TTL."""
        return None

    def dead_letters(self, scope: Scope, flt: DeadLetterFilter) -> list[DeadLetterRow]:
        where = self._where(scope)
        if flt.prefix is not None:
            # The prefix holds only [a-z0-9_: ] (DeadLetterFilter checks it): safe inside a regex.
            where += f" AND reason =~ /^{flt.prefix}/"
        (series,) = self._query(
            [
                f"SELECT park, gw, topic, reason, raw FROM {self._from(DEAD_LETTER)} WHERE {where} "
                f"ORDER BY time DESC LIMIT {int(flt.limit)} OFFSET {int(flt.offset)}"
            ]
        )
        return [
            DeadLetterRow(
                ts_ms=int(r["time"]),
                park=r.get("park") or "",
                gw=r.get("gw") or "",
                topic=r.get("topic") or "",
                reason=r.get("reason") or "",
                raw=r.get("raw") or "",
            )
            for r in self._rows(series)
        ]

    def ping(self) -> None:
        try:
            resp = self._client.get("/ping")
        except httpx.HTTPError as exc:
            raise QueryError(f"InfluxDB at {self._client.base_url} is unreachable: {exc}") from exc
        if resp.status_code >= 300:
            raise QueryError(f"InfluxDB /ping answered {resp.status_code}")

    def close(self) -> None:
        self._client.close()


def _rollup(rows: list[dict[str, Any]], resolution: int) -> list[dict[str, Any]]:
    """Merge child-cell rows into their parents at ``resolution`` (see the module docstring)."""
    and_mask, or_bits = h3_parent_bits(resolution)
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["park"], (r["h3"] & and_mask) | or_bits, r["operator"], r["tech"])].append(r)
    out = []
    for (park, cell, operator, tech), children in groups.items():
        n = np.array([c["samples"] for c in children], dtype=np.float64)
        merged: dict[str, Any] = {
            "park": park,
            "h3": cell,
            "operator": operator,
            "tech": tech,
            "samples": int(n.sum()),
            "devices": len(set().union(*(c["_devs"] for c in children))),
            "first_ms": min(c["first_ms"] for c in children),
            "last_ms": max(c["last_ms"] for c in children),
        }
        for col in _CELL_VALUES:
            v = np.array([np.nan if c[col] is None else c[col] for c in children], dtype=np.float64)
            ok = ~np.isnan(v)
            merged[col] = float(np.average(v[ok], weights=n[ok])) if ok.any() else None
        out.append(merged)
    return out
