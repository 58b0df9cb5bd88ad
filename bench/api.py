"""Benchmark of the API on a large DuckDB store: coverage latency and mixed-read throughput.

Generates ``--rows`` cellular readings (default 10 million) across 3 parks, 3 operators and
LTE/NR over 4 weeks with numpy, bulk-loads them into a DuckDB file through Arrow, starts
``parkwatch api`` in its own process and measures from this process:

- p50/p95/p99 of ``/coverage/cells`` (one park, one week) and ``/coverage/dead-zones``, cold
  (every request a distinct window, drawn without replacement, so no cached answer is reused) and
  warm (the same requests once more), reported separately;
- the same query straight on the backend (no HTTP, no GeoJSON) as the baseline of that ratio,
  and the previous SQL formulation of it (one sorted list per metric and group) on the same
  windows, for the speed-up of the current backend;
- requests/s of mixed reads from a separate load-generator process (``--clients`` threads with
  keep-alive connections), against ``/healthz`` requests/s as the baseline.

Run: ``python bench/api.py`` (about 2-4 minutes) or ``python bench/api.py --rows 1000000``.
It prints figures; it never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import h3
import httpx
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.auth import key_hash
from storage.duckdb_schema import ddl
from storage.query import Scope
from storage.query_duckdb import DuckDBQuery

PARKS = {"deepc": (20.830, 106.745), "vsip": (20.900, 106.640), "trangdue": (20.790, 106.700)}
OPERATORS = ("Sao Bien", "Hai Dang", "Song Hong")
START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 28
KEY = "bench-key"


def park_cells(lat: float, lon: float, half_km: float = 1.2) -> np.ndarray[Any, Any]:
    d_lat = half_km / 111.32
    d_lon = half_km / (111.32 * np.cos(np.radians(lat)))
    ring = [
        (lat - d_lat, lon - d_lon),
        (lat - d_lat, lon + d_lon),
        (lat + d_lat, lon + d_lon),
        (lat + d_lat, lon - d_lon),
    ]
    cells = sorted(h3.h3shape_to_cells(h3.LatLngPoly(ring), 10))
    return np.array([h3.str_to_int(c) for c in cells], dtype=np.uint64)


def generate(path: Path, rows: int, seed: int = 1) -> dict[str, Any]:
    """Write ``rows`` cellular readings to a new DuckDB file; return what was generated."""
    rng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    info: dict[str, Any] = {"cells": {}}
    layout = {}
    for park, (lat0, lon0) in PARKS.items():
        cells = park_cells(lat0, lon0)
        info["cells"][park] = len(cells)
        centres = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in cells])
        # A smooth field per operator with a few holes, plus per-sample noise.
        layout[park] = (cells, centres, centres[rng.choice(len(cells), 4, replace=False)])
    # Readings arrive in time order (as the ingester appends them): one day at a time.
    per_day = rows // DAYS
    for day in range(DAYS):
        n_day = per_day if day < DAYS - 1 else rows - per_day * (DAYS - 1)
        parts = []
        for k, park in enumerate(PARKS):
            cells, centres, holes = layout[park]
            n = (
                n_day // len(PARKS)
                if k < len(PARKS) - 1
                else n_day - (n_day // len(PARKS)) * (len(PARKS) - 1)
            )
            idx = rng.integers(0, len(cells), n)
            op = rng.integers(0, len(OPERATORS), n)
            dist = np.min(
                np.hypot(
                    centres[idx, 0, None] - holes[None, :, 0], centres[idx, 1, None] - holes[None, :, 1]
                ),
                axis=1,
            )
            rsrp = -80.0 - 8.0 * op - np.where(dist < 0.002, 35.0, 0.0) + rng.normal(0, 5, n)
            parts.append(
                {
                    "ts": (START.timestamp() + 86400 * day) * 1e6 + rng.uniform(0, 86400e6, n),
                    "park": np.full(n, park),
                    "gw": np.char.add(f"{park}-gw-", (idx % 8).astype(str)),
                    "dev": np.char.add("probe-", rng.integers(0, 30, n).astype(str)),
                    "lat": centres[idx, 0] + rng.uniform(-3e-4, 3e-4, n),
                    "lon": centres[idx, 1] + rng.uniform(-3e-4, 3e-4, n),
                    "h3": cells[idx],
                    "operator": np.array(OPERATORS)[op],
                    "tech": rng.choice(np.array(["LTE", "NR"]), n, p=[0.6, 0.4]),
                    "rsrp_dbm": np.round(np.clip(rsrp, -156, -31), 1),
                    "rsrq_db": np.round(np.clip(-10 + rng.normal(0, 3, n), -43, 20), 1),
                    "sinr_db": np.round(np.clip(15 - (-80 - rsrp) / 3 + rng.normal(0, 3, n), -23, 40), 1),
                }
            )
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(cols["ts"], kind="stable")
        table = pa.table(
            {
                k: pa.array(v[order].astype(np.int64), pa.timestamp("us"))
                if k == "ts"
                else pa.array(v[order], pa.uint64() if k == "h3" else None)
                for k, v in cols.items()
            }
        )
        con.register("chunk", table)
        con.execute("INSERT INTO cellular BY NAME SELECT * FROM chunk")
        con.unregister("chunk")
    statuses = [
        (START + timedelta(days=DAYS - 1), park, f"{park}-gw-{g}", "online", "0.1.0", "h1", 0, 0, 0.0)
        for park in PARKS
        for g in range(8)
    ]
    con.executemany(
        "INSERT INTO gateway_status (ts, park, gw, state, agent_version, config_hash, backlog, dropped, buffer_pct) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(s[0].replace(tzinfo=None), *s[1:]) for s in statuses],
    )
    con.execute("CHECKPOINT")
    con.close()
    return info


LIST_SQL = """
    WITH g AS (
        SELECT park, h3, operator, tech,
               list_sort(list(rsrp_dbm) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS lr,
               list_sort(list(rsrq_db) FILTER (WHERE rsrq_db IS NOT NULL)) AS lq,
               list_sort(list(sinr_db) FILTER (WHERE sinr_db IS NOT NULL)) AS ls,
               count(DISTINCT dev) FILTER (WHERE rsrp_dbm IS NOT NULL) AS devices,
               epoch_ms(min(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS first_ms,
               epoch_ms(max(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS last_ms
        FROM cellular WHERE ts >= ? AND ts < ? AND park = ? AND h3 IS NOT NULL
        GROUP BY ALL HAVING count(rsrp_dbm) > 0
    )
    SELECT park, h3, operator, tech, len(lr) AS samples, devices,
           lr[CAST(floor(len(lr) * 0.1 + 0.5) AS BIGINT)] AS rsrp_p10_dbm,
           (lr[(len(lr) + 1) // 2] + lr[len(lr) // 2 + 1]) / 2 AS rsrp_median_dbm,
           (lq[(len(lq) + 1) // 2] + lq[len(lq) // 2 + 1]) / 2 AS rsrq_median_db,
           ls[CAST(floor(len(ls) * 0.1 + 0.5) AS BIGINT)] AS sinr_p10_db,
           (ls[(len(ls) + 1) // 2] + ls[len(ls) // 2 + 1]) / 2 AS sinr_median_db,
           first_ms, last_ms
    FROM g ORDER BY park, h3, operator, tech
"""
"""The previous DuckDB formulation of cell statistics (one sorted list per metric and group),
timed on the same windows as the reference the current backend is compared with."""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def windows(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` distinct one-week windows inside the data (hour-aligned starts, drawn without
    replacement: no window repeats, so no answer can come from a cache)."""
    starts = rng.sample(range((DAYS - 7) * 24), n)
    return [
        ((START + timedelta(hours=h)).isoformat(), (START + timedelta(hours=h, days=7)).isoformat())
        for h in starts
    ]


def latency(
    client: httpx.Client, path: str, n: int, rng: random.Random, **extra: str
) -> tuple[list[float], list[float]]:
    """Cold (every request a new park x window) and warm (the same requests again) latencies, ms."""
    requests = [
        {"park": rng.choice(list(PARKS)), "from": frm, "to": to, **extra} for frm, to in windows(n, rng)
    ]
    out: tuple[list[float], list[float]] = ([], [])
    for timings in out:
        for params in requests:
            t0 = time.perf_counter()
            r = client.get(path, params=params)
            timings.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return out


MIX = [
    ("/api/v1/coverage/cells", {"limit": "500"}),
    ("/api/v1/coverage/dead-zones", {}),
    ("/api/v1/coverage/summary", {}),
    ("/api/v1/gateways", {}),
    ("/api/v1/coverage/cells", {"operator": "Sao Bien", "tech": "LTE", "limit": "500"}),
    ("/api/v1/broadband/summary", {}),
]


def _views() -> list[tuple[str, tuple[str, str]]]:
    """A handful of dashboard views (park x window): what many users hitting the API ask for."""
    return [(p, w) for p in PARKS for w in windows(2, random.Random(7))]


def _load_worker(base: str, seconds: float, clients: int, mixed: bool, out: Any) -> None:
    """A separate process: ``clients`` threads issuing requests for ``seconds``; puts (count, errors)."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors = [0] * clients
    views = _views()

    def run(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as c:
            while time.monotonic() < stop:
                if mixed:
                    path, extra = rng.choice(MIX)
                    park, (frm, to) = rng.choice(views)
                    params = {"park": park, "from": frm, "to": to, **extra}
                else:
                    path, params = "/healthz", {}
                try:
                    r = c.get(path, params=params)
                except httpx.HTTPError:
                    errors[i] += 1
                    continue
                counts[i] += 1
                errors[i] += r.status_code != 200

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(counts), sum(errors)))


def throughput(base: str, seconds: float, clients: int, mixed: bool) -> tuple[float, int]:
    q: Any = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_load_worker, args=(base, seconds, clients, mixed, q))
    p.start()
    count, errors = q.get(timeout=seconds + 120)
    p.join()
    return count / seconds, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--rows", type=int, default=10_000_000, help="cellular readings to generate (default 10M)"
    )
    ap.add_argument("--requests", type=int, default=60, help="timed requests per endpoint")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each throughput run")
    ap.add_argument("--clients", type=int, default=16, help="concurrent connections of the load generator")
    ap.add_argument(
        "--workdir", help="keep the DuckDB file here (reused when it exists with the same --rows)"
    )
    ap.add_argument(
        "--cache-ttl", type=float, default=5.0, help="[api] cache_ttl_s of the server (default 5, as shipped)"
    )
    ap.add_argument("--skip-latency", action="store_true", help="only measure throughput")
    ap.add_argument(
        "--skip-list-sql", action="store_true", help="do not time the previous per-group list SQL (reference)"
    )
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="pw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"bench-{args.rows}.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        info = generate(db, args.rows)
        print(
            f"generated {args.rows:,} readings in {time.perf_counter() - t0:.1f} s: {db} "
            f"({db.stat().st_size / 1e6:.0f} MB); res-10 cells per park {info['cells']}"
        )
    else:
        print(f"reusing {db}")

    # Baseline: the aggregation alone, straight on the backend; and the same windows through the
    # previous SQL formulation (per-group sorted lists), measured alternately in this run.
    backend = DuckDBQuery(path=db)
    con = duckdb.connect(str(db), read_only=True)
    rng = random.Random(1)
    base_ms: list[float] = []
    list_sql_ms: list[float] = []
    for frm, to in windows(3 if args.skip_latency else max(10, args.requests // 3), rng):
        park = rng.choice(list(PARKS))
        start, end = datetime.fromisoformat(frm), datetime.fromisoformat(to)
        t0 = time.perf_counter()
        backend.cell_stats(Scope(parks=(park,), start=start, end=end), resolution=10)
        base_ms.append((time.perf_counter() - t0) * 1000)
        if not args.skip_list_sql:
            t0 = time.perf_counter()
            con.execute(LIST_SQL, [start.replace(tzinfo=None), end.replace(tzinfo=None), park]).fetchall()
            list_sql_ms.append((time.perf_counter() - t0) * 1000)
    con.close()
    backend.close()

    port = 18000 + os.getpid() % 1000
    config = work / "api.toml"
    config.write_text(
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nregistry_path = "{work / "registry.sqlite"}"\ncache_ttl_s = {args.cache_ttl}\n'
        f'[backend]\ntype = "duckdb"\npath = "{db}"\n'
        f"[coverage]\nmax_window_days = 31\n"
        f'[[keys]]\nname = "bench"\nsha256 = "{key_hash(KEY)}"\nrole = "admin"\n'
        f'[logging]\nlevel = "WARNING"\n'
    )
    server = subprocess.Popen([sys.executable, "-m", "parkwatch", "api", "--config", str(config)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        cells: list[float] = []
        zones: list[float] = []
        cells_warm: list[float] = []
        zones_warm: list[float] = []
        n_cells = 0
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as c:
            if not args.skip_latency:
                latency(c, "/api/v1/coverage/cells", 3, random.Random(99))  # warm-up
                cells, cells_warm = latency(
                    c, "/api/v1/coverage/cells", args.requests, random.Random(2), limit="5000"
                )
                zones, zones_warm = latency(c, "/api/v1/coverage/dead-zones", args.requests, random.Random(3))
                frm, to = windows(1, random.Random(2))[0]
                n_cells = c.get(
                    "/api/v1/coverage/cells", params={"park": "deepc", "limit": "1", "from": frm, "to": to}
                ).json()["total"]
            # Fill the cache with every view of the mixed load once, as users opening dashboards do.
            t0 = time.perf_counter()
            for park, (frm, to) in _views():
                for path, extra in MIX:
                    c.get(path, params={"park": park, "from": frm, "to": to, **extra}).raise_for_status()
            warm_s = time.perf_counter() - t0
        healthz_rps, _ = throughput(base, args.seconds / 2, args.clients, mixed=False)
        mixed_rps, errors = throughput(base, args.seconds, args.clients, mixed=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    def line(name: str, v: list[float]) -> str:
        if not v:
            return f"{name:<34} (skipped)"
        return (
            f"{name:<34} p50 {pct(v, 50):7.1f}  p95 {pct(v, 95):7.1f}  p99 {pct(v, 99):7.1f} ms  (n={len(v)})"
        )

    print(
        f"\n{args.rows:,} readings, 3 parks, 4 weeks; one park, one-week windows; cold = every request a"
        f" distinct window, warm = the same requests repeated; load {os.getloadavg()[0]:.2f}"
    )
    print(line("backend cell_stats (baseline)", base_ms))
    if list_sql_ms:
        print(line("previous list-sort SQL (reference)", list_sql_ms))
        print(
            f"speed-up of backend cell_stats over the previous SQL, p50: {pct(list_sql_ms, 50) / pct(base_ms, 50):.2f}x"
        )
    print(line("GET /coverage/cells cold", cells) + f"  ~{n_cells} features")
    print(line("GET /coverage/cells warm", cells_warm))
    print(line("GET /coverage/dead-zones cold", zones))
    print(line("GET /coverage/dead-zones warm", zones_warm))
    if cells:
        print(f"ratio /coverage/cells p50 / backend p50: {pct(cells, 50) / pct(base_ms, 50):.2f}")
    print(
        f"cache warm-up: {len(_views()) * len(MIX)} distinct views computed in {warm_s:.1f} s (cache_ttl_s {args.cache_ttl})"
    )
    print(
        f"mixed reads, {args.clients} connections, separate process: {mixed_rps:7.1f} req/s ({errors} failed)"
    )
    print(
        f"/healthz, same load generator (baseline):  {healthz_rps:7.1f} req/s; mixed/healthz {mixed_rps / healthz_rps:.2f}"
    )
    summary = {
        "rows": args.rows,
        "cache_ttl_s": args.cache_ttl,
        "backend_ms_p50": round(pct(base_ms, 50), 1),
        "list_sql_ms_p50": round(pct(list_sql_ms, 50), 1) if list_sql_ms else None,
        "mixed_rps": round(mixed_rps, 1),
        "healthz_rps": round(healthz_rps, 1),
    }
    if cells:
        summary["cells_ms"] = {q: round(pct(cells, q), 1) for q in (50, 95, 99)}
        summary["dead_zones_ms"] = {q: round(pct(zones, q), 1) for q in (50, 95, 99)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
