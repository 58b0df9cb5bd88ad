"""Benchmark of the API on a large DuckDB store: `/coverage/cells` cold and warm, with and
without an ingester appending to the same store.

The data set: ``--rows`` cellular readings (default 10 million) across 3 parks, 3 operators and
LTE/NR over 4 weeks, generated once with numpy and kept under ``--data-dir`` (default
``/tmp/parkwatch-bench-api``), reused by later runs. Each run copies it, so every run starts from
the same store.

Each run starts a server process for each mode, the way ``parkwatch serve`` runs the embedded
store: one process, one DuckDB database, the API reading through a connection of the process
that writes. In the ``ingest`` mode a writer in that process appends cellular readings at a fixed
``--ingest-rate`` (default 20,000 readings/s) through the ingester's own DuckDB sink
(:class:`ingest.sinks.duckdb.DuckdbSink`, default settings), stamped after the data set's last
reading and advancing with the clock; the ``static`` mode runs the same process without it.
This process measures, one request at a time:

- ``cold``: every request a distinct one-park, one-week window (distinct starts, drawn without
  replacement per run), so no cached answer of this or an earlier request can serve it;
- ``warm``: the same requests once more, in the same order, right after;
- ``historical`` windows end before the data set's last day (an appended reading never falls in
  them); ``live`` windows (ingest mode) end after the live edge, so every append changes them.

Figures per run: p50/p95 with the load average (1 min) before and after each block, then the
median over the runs. Before the runs, one breakdown of a cold request straight on the stored
file (no HTTP): cell statistics, the dead-zone samples and ``assess_cells``.

Run: ``PYTHONPATH=$PWD python3 -m bench.api`` (10M readings: generating the data set takes about
2 minutes once; each run 5-15 minutes on 2 busy cores); ``--quick`` is a 1M-reading smoke run whose figures are not
for quoting. It prints figures; it never fails on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
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
from ingest.errors import RetryableError
from storage.duckdb_schema import ddl

PARKS = {"deepc": (20.830, 106.745), "vsip": (20.900, 106.640), "trangdue": (20.790, 106.700)}
OPERATORS = ("Sao Bien", "Hai Dang", "Song Hong")
START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 28
END = START + timedelta(days=DAYS)
"""The data set's readings lie in [START, END); the ingest writer appends from END on."""
KEY = "bench-key"
DATA_VERSION = 1
"""Bumped when :func:`generate` changes, so a cached data set of another shape is not reused."""


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


def dataset(data_dir: Path, rows: int) -> Path:
    """The cached data set of ``rows`` readings, generated on first use (atomically)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"cellular-{rows}-v{DATA_VERSION}.duckdb"
    if path.exists():
        print(f"data set: {path} (cached)")
        return path
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    info = generate(tmp, rows)
    tmp.rename(path)
    print(
        f"data set: generated {rows:,} readings in {time.perf_counter() - t0:.0f} s: {path} "
        f"({path.stat().st_size / 1e6:.0f} MB); res-10 cells per park {info['cells']}"
    )
    return path


# -- the server process: API and (optionally) the ingest writer over one DuckDB database ----------


class _Writer:
    """Appends cellular readings at a fixed rate through the ingester's DuckDB sink."""

    TICK_S = 0.05
    READINGS_PER_MESSAGE = 100

    def __init__(self, sink: Any, rate: float, seed: int = 5) -> None:
        self.sink = sink
        self.rate = rate
        self.written = 0
        self.write_ms: list[float] = []
        self.elapsed_s = 0.0
        self.behind_max = 0
        self.failed = 0
        self.last_error = ""
        rng = np.random.default_rng(seed)
        # Per park a pool of readings (a message carries readings of one park), cycled.
        self._pools: dict[str, dict[str, list[Any]]] = {}
        for park, (lat0, lon0) in PARKS.items():
            n = 40_000
            cells = park_cells(lat0, lon0)[rng.integers(0, len(park_cells(lat0, lon0)), n)]
            centre = {int(c): h3.cell_to_latlng(h3.int_to_str(int(c))) for c in np.unique(cells)}
            op = rng.integers(0, len(OPERATORS), n)
            rsrp = -80.0 - 8.0 * op + rng.normal(0, 5, n)
            jitter = rng.uniform(-3e-4, 3e-4, (n, 2))
            self._pools[park] = {
                "h3": cells.tolist(),
                "lat": [
                    round(centre[c][0] + float(d), 6)
                    for c, d in zip(cells.tolist(), jitter[:, 0], strict=True)
                ],
                "lon": [
                    round(centre[c][1] + float(d), 6)
                    for c, d in zip(cells.tolist(), jitter[:, 1], strict=True)
                ],
                "operator": [OPERATORS[o] for o in op.tolist()],
                "tech": rng.choice(np.array(["LTE", "NR"]), n, p=[0.6, 0.4]).tolist(),
                "rsrp_dbm": np.round(np.clip(rsrp, -156, -31), 1).tolist(),
                "rsrq_db": np.round(np.clip(-10 + rng.normal(0, 3, n), -43, 20), 1).tolist(),
                "sinr_db": np.round(
                    np.clip(15 - (-80 - rsrp) / 3 + rng.normal(0, 3, n), -23, 40), 1
                ).tolist(),
            }
        self._messages = 0

    def _batch(self, n: int) -> Any:
        """The next ``n`` readings: each stamped at its due time after the data set's end (several
        share a millisecond, told apart by device), in messages of one park each."""
        from contract.readings import Cellular
        from ingest.model import Part, WriteBatch

        end_ms = int(END.timestamp() * 1000)
        parts = []
        c = self.written
        for first in range(0, n, self.READINGS_PER_MESSAGE):
            park = list(PARKS)[self._messages % len(PARKS)]
            self._messages += 1
            p = self._pools[park]
            size = len(p["h3"])
            readings = []
            cells = []
            for _ in range(min(self.READINGS_PER_MESSAGE, n - first)):
                i = c % size
                readings.append(
                    Cellular(
                        ts=end_ms + int(c * 1000 // self.rate),
                        dev=f"probe-{c % 64}",
                        lat=p["lat"][i],
                        lon=p["lon"][i],
                        operator=p["operator"][i],
                        tech=p["tech"][i],
                        rsrp_dbm=p["rsrp_dbm"][i],
                        rsrq_db=p["rsrq_db"][i],
                        sinr_db=p["sinr_db"][i],
                    )
                )
                cells.append(p["h3"][i])  # the resolution-10 cell, as the ingester bins it
                c += 1
            parts.append(Part(park=park, gw=f"{park}-gw-live", readings=readings, h3=cells))
        return WriteBatch(parts=parts)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tick = 0
        while not stop.is_set():
            tick += 1
            now = loop.time()
            due = int(self.rate * (now - t0))
            n = due - self.written
            self.behind_max = max(self.behind_max, n - int(self.rate * self.TICK_S))
            if n > 0:
                batch = self._batch(n)
                w0 = time.perf_counter()
                try:
                    await self.sink.write(batch)
                except RetryableError as exc:
                    # What the ingester does with it: keep the batch (it spools) and try again.
                    self.failed += 1
                    self.last_error = str(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.TICK_S)
                    continue
                self.write_ms.append((time.perf_counter() - w0) * 1000)
                self.written += n
            self.elapsed_s = loop.time() - t0
            delay = t0 + tick * self.TICK_S - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


def data_clock(clock0: float) -> datetime:
    """The bench's "now": the data set's end plus the seconds since ``clock0`` (wall time), the
    time the writer stamps its readings with."""
    return END + timedelta(seconds=time.time() - clock0)


async def _serve(
    db: Path, config: Path, rate: float, stats_path: Path, memory_limit_mb: int, clock0: float
) -> None:
    import uvicorn

    from api.cli import build_app
    from api.registry import Registry
    from ingest.sinks.duckdb import DuckdbSink
    from settings.api import ApiSettings
    from settings.ingest import DuckdbSinkSettings
    from settings.loader import load_settings
    from settings.runtime import tune_gc_for_server
    from storage.query_duckdb import DuckDBQuery

    settings = load_settings(ApiSettings, config)
    # As parkwatch serve: the process's connection, shared by the ingester's sink and the API.
    con = duckdb.connect(str(db))
    store = DuckdbSinkSettings(path=str(db))
    if memory_limit_mb:  # [store] memory_limit_mb, for the whole database (the API's reads too)
        store = DuckdbSinkSettings(path=str(db), memory_limit_mb=memory_limit_mb)
    sink = DuckdbSink(store)
    await sink.start()
    backend = DuckDBQuery(connection=con, ingest_resolution=settings.coverage.ingest_resolution)
    registry = Registry(settings.api.registry_path)
    # The bench's clock, for requests without `to` (code before live views has none: the
    # dashboard mode then sends `to`, see --dashboard-to).
    clocked = "clock" in inspect.signature(build_app).parameters
    extra = {"clock": lambda: data_clock(clock0)} if clocked else {}
    app = build_app(settings, backend=backend, registry=registry, **extra)
    tune_gc_for_server()
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.api.host, port=settings.api.port, log_level="warning")
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    writer = _Writer(sink, rate) if rate > 0 else None
    async with asyncio.TaskGroup() as tg:
        api_task = tg.create_task(server.serve(), name="api")
        if writer is not None:
            tg.create_task(writer.run(stop), name="writer")
        await stop.wait()
        server.should_exit = True
        await api_task
    await sink.aclose()
    registry.close()
    con.close()
    out: dict[str, Any] = {"written": 0}
    if writer is not None:
        w = sorted(writer.write_ms) or [0.0]
        out = {
            "written": writer.written,
            "rate": writer.written / max(writer.elapsed_s, 1e-9),
            "seconds": writer.elapsed_s,
            "behind_max": writer.behind_max,
            "write_ms_p50": w[len(w) // 2],
            "write_ms_p99": w[min(len(w) - 1, int(len(w) * 0.99))],
            "failed": writer.failed,
            "last_error": writer.last_error,
        }
    await asyncio.to_thread(stats_path.write_text, json.dumps(out))


# -- the measuring process -------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def windows(n: int, rng: random.Random, *, live: bool) -> list[tuple[str, str]]:
    """``n`` distinct one-week windows: historical ones with hour-aligned starts in the first
    three weeks (ending before the last day), live ones ending after the live edge (distinct
    starts a minute apart, drawn without replacement)."""
    if live:
        ends = [END + timedelta(days=1) - timedelta(minutes=m) for m in rng.sample(range(600), n)]
        return [((e - timedelta(days=7)).isoformat(), e.isoformat()) for e in ends]
    starts = rng.sample(range((DAYS - 8) * 24), n)
    return [
        ((START + timedelta(hours=h)).isoformat(), (START + timedelta(hours=h, days=7)).isoformat())
        for h in starts
    ]


def load1() -> float:
    return os.getloadavg()[0]


def timed_pass(client: httpx.Client, requests: list[dict[str, str]]) -> dict[str, Any]:
    """Each request once: latencies (ms) of the answered ones, failures (status: count), the load
    average before and after, the cells of the last answer."""
    out: list[float] = []
    failed: dict[str, int] = {}
    before = load1()
    total = 0
    for params in requests:
        t0 = time.perf_counter()
        r = client.get("/api/v1/coverage/cells", params=params)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            failed[str(r.status_code)] = failed.get(str(r.status_code), 0) + 1
            continue
        out.append(ms)
        total = int(r.json()["total"])
    return {"ms": out, "failed": failed, "load": (before, load1()), "features": total}


MODES = ("static", "ingest", "dashboard")
"""Server runs of the bench: a static store; appending with distinct explicit windows (cold and
warm); appending with the dashboard's requests (live views, no ``to``)."""
DASHBOARD_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
"""The dashboard's window choices measured (it also offers the last hour)."""


def dashboard_pass(
    client: httpx.Client, clock0: float, plan: list[tuple[str, str]], pace_s: float, *, to: bool = False
) -> dict[str, Any]:
    """What the dashboard asks: ``from`` = now - window, no ``to``, ``limit`` 5000, so every
    request is another window. The views of ``plan`` in turn, one every ``pace_s``: latencies
    (ms) and the age of each answer's ``as_of`` (s, against the bench's clock). ``to``: send
    ``to`` = now as well (what a request without it meant before live views)."""
    out: list[float] = []
    ages: list[float] = []
    failed: dict[str, int] = {}
    before = load1()
    total = 0
    for park, win in plan:
        t_next = time.monotonic() + pace_s
        now = data_clock(clock0)
        params = {"park": park, "from": (now - DASHBOARD_WINDOWS[win]).isoformat(timespec="milliseconds")}
        if to:
            params["to"] = now.isoformat(timespec="milliseconds")
        t0 = time.perf_counter()
        r = client.get("/api/v1/coverage/cells", params={**params, "limit": "5000"})
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            failed[str(r.status_code)] = failed.get(str(r.status_code), 0) + 1
            continue
        out.append(ms)
        body = r.json()
        total = int(body["total"])
        if "as_of" in body:
            ages.append((data_clock(clock0) - datetime.fromisoformat(body["as_of"])).total_seconds())
        time.sleep(max(0.0, t_next - time.monotonic()))
    return {"ms": out, "failed": failed, "load": (before, load1()), "features": total, "ages": ages}


def breakdown(db: Path, n: int, seed: int) -> dict[str, list[float]]:
    """A cold request's parts straight on the stored file (read-only, no HTTP), per window: wall
    time (ms) of each part and of all three, and the process's CPU time of all three (``cpu``).

    The backend may fetch a window's rows once for the cell statistics and the samples (the
    second part then reads the rows the first fetched): compare the totals."""
    from analytics.deadzones import assess_cells
    from storage.query import Scope
    from storage.query_duckdb import DuckDBQuery

    backend = DuckDBQuery(path=db)
    rng = random.Random(seed)
    names = ("cell_stats", "cell_samples", "assess_cells", "total", "cpu")
    out: dict[str, list[float]] = {name: [] for name in names}
    try:
        for frm, to in windows(n, rng, live=False):
            scope = Scope(
                parks=(rng.choice(list(PARKS)),),
                start=datetime.fromisoformat(frm),
                end=datetime.fromisoformat(to),
            )
            c0 = time.process_time()
            t0 = time.perf_counter()
            backend.cell_stats(scope, resolution=10)
            t1 = time.perf_counter()
            samples = backend.cell_samples(scope, resolution=10)
            t2 = time.perf_counter()
            assess_cells(samples)
            t3 = time.perf_counter()
            out["cpu"].append((time.process_time() - c0) * 1000)
            out["cell_stats"].append((t1 - t0) * 1000)
            out["cell_samples"].append((t2 - t1) * 1000)
            out["assess_cells"].append((t3 - t2) * 1000)
            out["total"].append((t3 - t0) * 1000)
    finally:
        backend.close()
    return out


def start_server(
    work: Path, db: Path, port: int, rate: float, memory_limit_mb: int
) -> tuple[subprocess.Popen[bytes], Path, float]:
    config = work / "api.toml"
    config.write_text(
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nregistry_path = "{work / "registry.sqlite"}"\n'
        f'[backend]\ntype = "duckdb"\npath = "{db}"\n'
        f"[coverage]\nmax_window_days = 31\n"
        f'[[keys]]\nname = "bench"\nsha256 = "{key_hash(KEY)}"\nrole = "admin"\n'
        f'[logging]\nlevel = "WARNING"\n'
    )
    stats = work / "server-stats.json"
    stats.unlink(missing_ok=True)
    clock0 = time.time()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.api",
            "serve",
            str(db),
            str(config),
            str(rate),
            str(stats),
            str(memory_limit_mb),
            repr(clock0),
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bench server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, stats, clock0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the bench server did not become ready in 120 s")


def run_mode(args: argparse.Namespace, data: Path, work: Path, mode: str, run: int) -> dict[str, Any]:
    """One server process in ``mode``; the figures of its blocks."""
    db = work / "store.duckdb"
    for p in work.glob("store.duckdb*"):
        p.unlink()
    for p in work.glob("registry.sqlite*"):
        p.unlink()
    shutil.copyfile(data, db)
    rate = args.ingest_rate if mode in ("ingest", "dashboard") else 0.0
    port = 18000 + (os.getpid() + run * 3 + MODES.index(mode)) % 1000
    proc, stats_path, clock0 = start_server(work, db, port, rate, args.memory_limit_mb)
    blocks: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=600) as c:
            # Warm the process (imports, first scan) on windows outside the measured ones.
            for frm, to in windows(2, random.Random(1000 + run), live=False):
                c.get("/api/v1/coverage/cells", params={"park": "vsip", "from": frm, "to": to, "limit": "1"})
            if rate > 0:
                time.sleep(args.settle_s)  # the writer runs at its rate before the first timed request
            if mode == "dashboard":
                # A server of its own (its refresher does not run beside the other blocks):
                # each park's last 24 h and 7 days, first asked here (computed on request), then
                # again and again while the refresher keeps them current.
                views = [(park, win) for park in PARKS for win in DASHBOARD_WINDOWS]
                rng = random.Random(f"{run}-dashboard")
                blocks["dashboard first"] = dashboard_pass(c, clock0, views, 0.0, to=args.dashboard_to)
                plan = [rng.choice(views) for _ in range(int(args.dashboard_s))]
                blocks["dashboard"] = dashboard_pass(c, clock0, plan, 1.0, to=args.dashboard_to)
            kinds = {"static": ["historical"], "ingest": ["historical", "live"]}.get(mode, [])
            for kind in kinds:
                rng = random.Random(f"{run}-{mode}-{kind}")
                reqs = [
                    {"park": rng.choice(list(PARKS)), "from": frm, "to": to, "limit": "1000"}
                    for frm, to in windows(args.requests, rng, live=kind == "live")
                ]
                for temp in ("cold", "warm"):
                    blocks[f"{kind} {temp}"] = timed_pass(c, reqs)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    writer = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return {"blocks": blocks, "writer": writer}


def _rounded(ms: float) -> int | None:
    return None if math.isnan(ms) else round(ms)


def fmt_block(name: str, b: dict[str, Any]) -> str:
    ms = b["ms"] or [float("nan")]
    failed = "".join(f", {n} answered {code}" for code, n in b["failed"].items())
    if b.get("ages"):
        failed += f", as_of age p50 {pct(b['ages'], 50):.0f} s max {max(b['ages']):.0f} s"
    return (
        f"  {name:<16} p50 {pct(ms, 50):8.0f}  p95 {pct(ms, 95):8.0f} ms  (n={len(b['ms'])}{failed}, "
        f"~{b['features']} cells)  load {b['load'][0]:.2f} -> {b['load'][1]:.2f}"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        db, config, rate, stats, memory, clock0 = sys.argv[2:8]
        asyncio.run(_serve(Path(db), Path(config), float(rate), Path(stats), int(memory), float(clock0)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="cellular readings in the data set")
    ap.add_argument("--quick", action="store_true", help="1M readings, 1 run, 4 requests: a smoke run")
    ap.add_argument("--data-dir", default="/tmp/parkwatch-bench-api", help="where the data set is kept")
    ap.add_argument("--runs", type=int, default=3, help="runs (each: a fresh copy, both modes)")
    ap.add_argument("--requests", type=int, default=6, help="distinct windows per block")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    ap.add_argument("--ingest-rate", type=float, default=20_000.0, help="readings/s of the writer")
    ap.add_argument("--settle-s", type=float, default=5.0, help="writer running before timing")
    ap.add_argument(
        "--memory-limit-mb",
        type=int,
        default=0,
        help="[store] memory_limit_mb of the server (0: the shipped default), DuckDB's limit for the whole database",
    )
    ap.add_argument(
        "--dashboard-s",
        type=float,
        default=60.0,
        help="seconds of dashboard requests (live views: no `to`) in the dashboard mode",
    )
    ap.add_argument(
        "--dashboard-to",
        action="store_true",
        help="the dashboard mode's requests carry `to` = now (for code before live views, whose "
        "requests without `to` meant exactly that)",
    )
    ap.add_argument("--breakdown", type=int, default=3, help="windows of the breakdown (0: none)")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.runs, args.requests = 1_000_000, 1, 4
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        ap.error(f"--modes: any of {', '.join(MODES)}")

    print(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load {load1():.2f}, {os.cpu_count()} cores")
    from settings.ingest import DuckdbSinkSettings

    limit = args.memory_limit_mb or DuckdbSinkSettings().memory_limit_mb
    print(
        f"server: API and writer in one process over one DuckDB database, [store] memory_limit_mb = {limit}"
        f"{'' if args.memory_limit_mb else ' (the default)'}; ingest rate {args.ingest_rate:,.0f} readings/s"
    )
    if args.quick:
        print("QUICK RUN (1M readings, 1 run): smoke figures, NOT FOR QUOTING")
    data = dataset(Path(args.data_dir), args.rows)
    work = Path(args.data_dir) / f"work-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    if args.breakdown:
        lb = load1()
        parts = breakdown(data, args.breakdown, seed=42)
        print(
            f"\ncold request breakdown, straight on the stored file (no HTTP, no ingest), n={args.breakdown}, load {lb:.2f} -> {load1():.2f}:"
        )
        total = statistics.median(parts["total"])
        for name, v in parts.items():
            m = statistics.median(v)
            share = f"({m / total:4.0%})" if name not in ("total", "cpu") else "      "
            what = "CPU ms" if name == "cpu" else "ms    "
            print(f"  {name:<14} median {m:7.0f} {what} {share}  runs {', '.join(f'{x:.0f}' for x in v)}")

    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    try:
        for run in range(args.runs):
            for mode in modes:
                r = run_mode(args, data, work, mode, run)
                results[mode].append(r)
                print(f"\nrun {run + 1}/{args.runs}, {mode}:")
                for name, b in r["blocks"].items():
                    print(fmt_block(name, b))
                w = r["writer"]
                if w.get("written"):
                    print(
                        f"  writer: {w['written']:,} readings in {w['seconds']:.0f} s = {w['rate']:,.0f}/s "
                        f"(target {args.ingest_rate:,.0f}/s), write p50 {w['write_ms_p50']:.0f} ms "
                        f"p99 {w['write_ms_p99']:.0f} ms, most behind {w['behind_max']:,} readings"
                    )
                    if w["failed"]:
                        print(
                            f"  writer: {w['failed']} appends failed and were retried; last: {w['last_error']}"
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nsummary: {args.rows:,} readings, /coverage/cells one park one week (first 1000 cells), "
        f"median over {args.runs} run(s) of each run's p50 / p95 [spread of p95]:"
    )
    summary: dict[str, Any] = {"rows": args.rows, "runs": args.runs, "requests": args.requests}
    for mode in modes:
        names = list(results[mode][0]["blocks"]) if results[mode] else []
        for name in names:
            answered = [r["blocks"][name]["ms"] or [float("nan")] for r in results[mode]]
            p50s = [pct(ms, 50) for ms in answered]
            p95s = [pct(ms, 95) for ms in answered]
            failures = sum(sum(r["blocks"][name]["failed"].values()) for r in results[mode])
            ages = [a for r in results[mode] for a in r["blocks"][name].get("ages", [])]
            loads = [x for r in results[mode] for x in r["blocks"][name]["load"]]
            print(
                f"  {mode:<6} {name:<16} p50 {statistics.median(p50s):8.0f}  p95 {statistics.median(p95s):8.0f} ms"
                f"  [{min(p95s):.0f}-{max(p95s):.0f}]  load {min(loads):.1f}-{max(loads):.1f}"
                + (f"  ({failures} requests failed)" if failures else "")
                + (f"  as_of age max {max(ages):.0f} s" if ages else "")
            )
            summary[f"{mode} {name}"] = {
                "p50_ms": _rounded(statistics.median(p50s)),
                "p95_ms": _rounded(statistics.median(p95s)),
                "failed": failures,
            }
        rates = [r["writer"]["rate"] for r in results[mode] if r["writer"].get("written")]
        if rates:
            print(
                f"  {mode:<6} writer rate, median {statistics.median(rates):,.0f} readings/s (target {args.ingest_rate:,.0f})"
            )
    if args.quick:
        print("QUICK RUN: smoke figures, NOT FOR QUOTING")
    print(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load {load1():.2f}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
