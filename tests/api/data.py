"""Small deterministic test data and loaders into a real DuckDB file and a real InfluxDB.

Rows use the storage layout of :mod:`storage.schema`: ``ts`` as naive UTC datetimes, ``h3`` as
an integer (DuckDB) / hex tag (InfluxDB). The InfluxDB loader is written with
the ingester's :func:`storage.lineprotocol.encode_point`.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import h3
import numpy as np
import pyarrow as pa

from storage.duckdb_schema import ddl, table_columns
from storage.lineprotocol import encode_point
from storage.schema import KIND_COLUMNS

T0: Final = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
"""Start of the test data (a Monday)."""
RES: Final = 10
CENTER: Final = (20.80, 106.75)
HOLE: Final = (20.803, 106.753)
"""Centre of the planted dead zone."""
HOLE_RADIUS_M: Final = 180.0

Rows = dict[str, list[dict[str, Any]]]


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _dist_m(
    lat: np.ndarray[Any, Any], lon: np.ndarray[Any, Any], p: tuple[float, float]
) -> np.ndarray[Any, Any]:
    dy = (lat - p[0]) * 111_320.0
    dx = (lon - p[1]) * 111_320.0 * np.cos(np.radians(p[0]))
    return np.asarray(np.hypot(dx, dy))


def cellular_rows(*, n: int = 1500, park: str = "p1", seed: int = 1) -> list[dict[str, Any]]:
    """Probe readings around :data:`CENTER` for two operators; operator Alpha has a hole at :data:`HOLE`."""
    rng = np.random.default_rng(seed)
    lat = CENTER[0] + rng.uniform(-0.006, 0.006, n)
    lon = CENTER[1] + rng.uniform(-0.006, 0.006, n)
    ts = [T0 + timedelta(seconds=int(s)) for s in np.sort(rng.uniform(0, 3 * 86400, n))]
    ops = rng.choice(["Alpha", "Beta"], n)
    tech = rng.choice(["LTE", "NR"], n, p=[0.7, 0.3])
    dev = rng.choice(["probe-1", "probe-2", "probe-3"], n)
    rsrp = -85.0 + rng.normal(0, 4, n)
    hole = (ops == "Alpha") & (_dist_m(lat, lon, HOLE) < HOLE_RADIUS_M)
    rsrp[hole] = -118.0 + rng.normal(0, 3, hole.sum())
    rsrq = -10.0 + rng.normal(0, 2, n)
    sinr = np.where(hole, -3.0, 12.0) + rng.normal(0, 2, n)
    rows = []
    for i in range(n):
        rows.append(
            {
                "ts": ts[i],
                "park": park,
                "gw": "gw-1",
                "dev": str(dev[i]),
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "h3": h3.str_to_int(h3.latlng_to_cell(float(lat[i]), float(lon[i]), RES)),
                "operator": str(ops[i]),
                "tech": str(tech[i]),
                "rsrp_dbm": round(float(np.clip(rsrp[i], -156, -31)), 1),
                "rsrq_db": round(float(rsrq[i]), 1),
                "sinr_db": round(float(np.clip(sinr[i], -23, 40)), 1),
            }
        )
    return rows


def dataset() -> Rows:
    """Cellular readings in two parks plus broadband, machine, energy, status and ledger rows."""
    rows: Rows = {"cellular": cellular_rows() + cellular_rows(n=300, park="p2", seed=2)}
    for r in rows["cellular"][-300:]:
        r["gw"] = "gw-9"
    rng = np.random.default_rng(3)
    rows["broadband"] = [
        {
            "ts": T0 + timedelta(minutes=5 * i),
            "park": "p1",
            "gw": f"gw-{1 + i % 2}",
            "dev": "probe",
            "target": "isp",
            "latency_ms": round(float(20 + rng.gamma(2, 5)), 2),
            "jitter_ms": round(float(rng.uniform(0, 5)), 2),
            "loss_pct": float(rng.choice([0.0, 0.0, 0.0, 2.0])),
            "down_mbps": round(float(rng.uniform(80, 160)), 1),
            "up_mbps": round(float(rng.uniform(15, 40)), 1),
            "ipv4_ok": True,
            "ipv6_ok": bool(i % 3),
        }
        for i in range(60)
    ]
    # One machine: 10 s samples for one hour; running 40 min, fault 10 min, idle 10 min;
    # 240 parts (one per 10 s while running), 12 rejects; spindle hot for 90 s from minute 20.
    machine = []
    for k in range(360):
        t = T0 + timedelta(seconds=10 * k)
        state = "running" if k < 240 else ("fault" if k < 300 else "idle")
        machine.append(
            {
                "ts": t,
                "park": "p1",
                "gw": "gw-1",
                "dev": "cnc-1",
                "state": state,
                "parts_total": 1000 + min(k, 240),
                "rejects_total": 50 + min(k, 240) // 20,
                "spindle_temp_c": 90.0 if 120 <= k < 129 else 60.0,
            }
        )
    rows["machine"] = machine
    rows["energy"] = [
        {
            "ts": T0 + timedelta(seconds=60 * k),
            "park": "p1",
            "gw": "gw-1",
            "dev": "meter-1",
            "power_kw": 50.0 if k < 30 else 100.0,
            "energy_kwh": 5000.0 + (50.0 * min(k, 30) + 100.0 * max(k - 30, 0)) / 60.0,
        }
        for k in range(61)
    ]
    rows["gateway_status"] = [
        {
            "ts": T0,
            "park": "p1",
            "gw": "gw-1",
            "state": "online",
            "agent_version": "0.1.0",
            "config_hash": "abc",
            "backlog": 0,
            "dropped": 0,
            "buffer_pct": 0.0,
            "uplink_operator": "Alpha",
            "uplink_tech": "LTE",
            "uplink_rsrp_dbm": -90.0,
            "uplink_sinr_db": 10.0,
        },
        {
            "ts": T0 + timedelta(minutes=30),
            "park": "p1",
            "gw": "gw-2",
            "state": "online",
            "agent_version": "0.1.0",
            "config_hash": "abc",
            "backlog": 5,
            "dropped": 0,
            "buffer_pct": 1.0,
        },
        {"ts": T0 + timedelta(minutes=40), "park": "p1", "gw": "gw-2", "state": "offline"},
        {
            "ts": T0 + timedelta(minutes=50),
            "park": "p1",
            "gw": "gw-2",
            "state": "online",
            "agent_version": "0.1.0",
            "config_hash": "def",
            "backlog": 7,
            "dropped": 1,
            "buffer_pct": 2.0,
        },
        {
            "ts": T0,
            "park": "p2",
            "gw": "gw-9",
            "state": "online",
            "agent_version": "0.1.0",
            "config_hash": "zzz",
        },
    ]
    rows["loss_ledger"] = [
        {
            "ts": T0 + timedelta(minutes=55),
            "park": "p1",
            "gw": "gw-1",
            "received": 100,
            "missing": 2,
            "duplicated": 1,
            "late": 0,
            "last_seq": 102,
        },
        {
            "ts": T0 + timedelta(minutes=56),
            "park": "p2",
            "gw": "gw-9",
            "received": 10,
            "missing": 0,
            "duplicated": 0,
            "late": 0,
            "last_seq": 10,
        },
    ]
    return rows


def load_duckdb(path: Path, rows: Rows) -> None:
    """Create the store's tables in ``path`` and bulk-insert ``rows``."""
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    tables = table_columns()
    for table, items in rows.items():
        cols = [c for c, _ in tables[table]]
        data = {c: [_naive(r[c]) if c == "ts" else r.get(c) for r in items] for c in cols}
        arrow = pa.table(
            {
                c: pa.array(v, type=_ARROW.get(t))
                for (c, t), v in zip(tables[table], data.values(), strict=True)
            }
        )
        con.register("incoming", arrow)
        con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
        con.unregister("incoming")
    con.close()


_ARROW: Final = {
    "TIMESTAMP": pa.timestamp("us"),
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "UBIGINT": pa.uint64(),
    "BOOLEAN": pa.bool_(),
}


def _typed(v: Any, typ: str) -> Any:
    if typ == "int" and not isinstance(v, bool):
        return int(v)
    if typ == "float":
        return float(v)
    return v


def line_protocol(rows: Rows) -> str:
    """Line protocol of ``rows`` in the layout of :mod:`storage.schema` (tags sorted, like the ingester)."""
    lines = []
    for table, items in rows.items():
        cols = {c.name: c for c in KIND_COLUMNS.get(table, ())}
        for r in items:
            tags = {"park": r["park"], "gw": r["gw"]}
            if "dev" in r:
                tags["dev"] = r["dev"]
            if r.get("h3") is not None:
                tags["h3"] = h3.int_to_str(r["h3"])
            for name, c in cols.items():
                if c.dimension and r.get(name) is not None:
                    tags[name] = r[name]
            fields = [
                (k, _typed(v, cols[k].type if k in cols else ""))
                for k, v in r.items()
                if k not in tags and k not in ("ts", "h3") and v is not None
            ]
            ns = int(r["ts"].timestamp() * 1_000_000) * 1000
            lines.append(encode_point(table, sorted(tags.items()), fields, ns))
    return "\n".join(lines) + "\n"


def load_influx(url: str, db: str, rows: Rows) -> None:
    """Create ``db`` and write ``rows`` through ``/write`` (nanosecond precision)."""
    q = urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{url}/query", data=q), timeout=10).read()
    body = line_protocol(rows).encode()
    req = urllib.request.Request(f"{url}/write?db={urllib.parse.quote(db)}", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204, resp.read()


def influx_query(url: str, db: str, q: str) -> dict[str, Any]:
    data = urllib.parse.urlencode({"q": q, "db": db}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/query", data=data), timeout=10) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out
