"""Ingest benchmark: Mosquitto → ``parkwatch ingest`` → DuckDB / InfluxDB, against a direct-write ceiling.

Run from the repository root::

    python bench/ingest.py --quick            # ~1 min: small runs of every scenario
    python bench/ingest.py                    # full runs (a few minutes)
    python bench/ingest.py --sink duckdb      # one sink only

What it does, with a real Mosquitto and InfluxDB 1.x from ``tests.servers`` and a DuckDB file:

1. pre-generates contract batches (mixed kinds; 100 readings per batch for DuckDB, 1-500 for
   InfluxDB) and writes them to a file;
2. starts ``python -m parkwatch ingest`` as a subprocess, then a publisher subprocess that
   publishes every batch with QoS 1 at full speed (its ``sent`` stamp set at publish time);
3. measures readings/s from the first publish until the ingester reports all readings written,
   then verifies the count *in the store*; samples the ingester's CPU and peak RSS (psutil);
4. measures the ceiling: the same points bulk-written straight to the same sink (pre-built
   Arrow tables / pre-encoded line protocol, no MQTT), and prints the ratio;
5. repeats at half the measured rate for p50/p99 end-to-end latency (publish → durable write);
6. InfluxDB only: two ingester processes on one MQTT v5 shared subscription.

Figures are medians of ``--repeat`` runs; the machine is shared and noisy, so the ingester's CPU
time per reading is printed too. Nothing here passes or fails: read the numbers. The ingester
runs with its default settings; ``BENCH_INGEST_EXTRA`` adds lines to its ``[ingest]`` section,
e.g. ``BENCH_INGEST_EXTRA=$'max_unacked = 1000\nbatch_readings = 20000'``, and
``BENCH_SINK_EXTRA`` to the DuckDB runs' ``[sink]`` section, e.g. ``BENCH_SINK_EXTRA='memory_limit_mb = 16'``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

SENT_PLACEHOLDER = 9_999_999_999_999
"""13 digits like a current epoch-ms stamp: the publisher patches it in place at publish time."""
TOPIC_ROOT = "bench/parkwatch"


# ---------------------------------------------------------------- data


def generate(
    n_readings: int, *, sizes: tuple[int, int], gateways: int = 20, seed: int = 7
) -> list[tuple[str, bytes]]:
    """Contract batches as (topic, JSON payload), mixed kinds, unique reading identities."""
    from contract import Batch, Broadband, Cellular, Energy, Environment, Generic, Machine, encode, topic_for

    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    out: list[tuple[str, bytes]] = []
    seqs = [0] * gateways
    made = 0
    while made < n_readings:
        g = rng.randrange(gateways)
        gw = f"gw-{g:03d}"
        n = min(rng.randint(*sizes), n_readings - made)
        readings: list[Any] = []
        for i in range(n):
            ts = base + (made + i)  # unique per reading: identities never collide
            dev = f"d{i % 50}"
            match i % 6:
                case 0:
                    readings.append(
                        Cellular(
                            ts=ts,
                            dev=dev,
                            operator=rng.choice(["Viettel", "VNPT", "MobiFone"]),
                            tech="LTE",
                            rsrp_dbm=-120.0 + rng.random() * 50,
                            sinr_db=rng.random() * 20,
                            pci=i % 500,
                            # mobile probes drift around their gateway: a few hundred H3 cells in all
                            lat=20.80 + g * 0.005 + rng.random() * 0.002,
                            lon=106.60 + (i % 50) * 0.001 + rng.random() * 0.002,
                        )
                    )
                case 1:
                    readings.append(
                        Machine(
                            ts=ts,
                            dev=dev,
                            state="running",
                            spindle_temp_c=40 + rng.random(),
                            parts_total=made + i,
                            vibration_mm_s=rng.random() * 3,
                        )
                    )
                case 2:
                    readings.append(
                        Energy(
                            ts=ts,
                            dev=dev,
                            power_kw=rng.random() * 90,
                            energy_kwh=1e5 + made + i,
                            voltage_v=400.0,
                            power_factor=0.93,
                        )
                    )
                case 3:
                    readings.append(
                        Environment(
                            ts=ts,
                            dev=dev,
                            temp_c=25 + rng.random() * 8,
                            humidity_pct=70.0,
                            pm25_ug_m3=rng.random() * 80,
                        )
                    )
                case 4:
                    readings.append(
                        Broadband(
                            ts=ts,
                            dev=dev,
                            target="vnix-hn",
                            latency_ms=rng.random() * 40,
                            loss_pct=0.0,
                            down_mbps=rng.random() * 900,
                            ipv6_ok=True,
                        )
                    )
                case _:
                    readings.append(Generic(ts=ts, dev=dev, f={"level_m": rng.random() * 4}))
        batch = Batch(v=1, gw=gw, seq=seqs[g], readings=readings, sent=SENT_PLACEHOLDER)
        seqs[g] += 1
        made += n
        out.append((topic_for(f"hp-{g % 3}", gw, "telemetry", root=TOPIC_ROOT), encode(batch)))
    return out


# ---------------------------------------------------------------- publisher (separate process)


def publisher_main(path: str, port: int, rate: float) -> None:
    """Publish every (topic, payload) of ``path`` with QoS 1; print the start time first."""
    import paho.mqtt.client as mqtt

    items: list[tuple[str, bytes]] = msgspec.msgpack.decode(
        Path(path).read_bytes(), type=list[tuple[str, bytes]]
    )
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(2000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    placeholder = f'"sent":{SENT_PLACEHOLDER}'.encode()
    start = time.time()
    print(f"start {start:.6f}", flush=True)
    infos = []
    for i, (topic, payload) in enumerate(items):
        if rate:
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        stamped = payload.replace(placeholder, f'"sent":{int(time.time() * 1000)}'.encode(), 1)
        while True:
            info = client.publish(topic, stamped, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.001)
                continue
            break
        infos.append(info)
    for info in infos:
        info.wait_for_publish(timeout=120)
    print(f"done {time.time():.6f}", flush=True)
    client.disconnect()
    client.loop_stop()


# ---------------------------------------------------------------- helpers


def server_process(workdir: Path) -> Any:
    """The psutil process of a server started from ``tests.servers`` in ``workdir``."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if any(str(workdir) in part for part in proc.info["cmdline"] or []):
            return proc
    raise RuntimeError(f"no server process for {workdir}")


def cpu_seconds(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def metrics(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(parkwatch_ingest_\w+) (\S+)$", text, re.M)}


@dataclass
class Run:
    readings: int
    seconds: float
    stored: int
    cpu_cores: float
    peak_rss_mb: float
    p50_s: float
    p99_s: float
    publish_s: float

    @property
    def rate(self) -> float:
        return self.readings / self.seconds

    @property
    def cpu_us_per_reading(self) -> float:
        """Ingester CPU time per reading: robust against other load on a shared machine."""
        return self.cpu_cores * self.seconds / self.readings * 1e6


def start_ingester(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch", "ingest", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def write_config(
    path: Path, *, mqtt_port: int, sink: str, client_id: str, metrics_port: int, share: str = ""
) -> None:
    path.write_text(
        f'[broker]\nport = {mqtt_port}\ntopic_root = "{TOPIC_ROOT}"\n'
        f"{sink}\n"
        f'[ingest]\nclient_id = "{client_id}"\nshare_group = "{share}"\nspool_dir = "{path.parent / ("spool-" + client_id)}"\n'
        f"metrics_port = {metrics_port}\n{os.environ.get('BENCH_INGEST_EXTRA', '')}\n"
        '[logging]\nlevel = "WARNING"\n'
    )


def run_ingest(
    *,
    workdir: Path,
    mqtt_port: int,
    sink_toml: str,
    data_file: Path,
    total: int,
    rate: float,
    instances: int = 1,
    count_store: Any,
) -> Run:
    """One measured run: ingester process(es) up, publisher process, wait for all readings written."""
    import psutil

    from tests.servers import free_port

    tag = f"{int(time.time() * 1000) % 10**8}"
    share = f"g{tag}" if instances > 1 else ""
    procs, ports = [], []
    for i in range(instances):
        port = free_port()
        cfg = workdir / f"ingest-{tag}-{i}.toml"
        write_config(
            cfg,
            mqtt_port=mqtt_port,
            sink=sink_toml,
            client_id=f"bench-{tag}-{i}",
            metrics_port=port,
            share=share,
        )
        procs.append(start_ingester(cfg, workdir / f"ingest-{tag}-{i}.log"))
        ports.append(port)
    try:
        deadline = time.monotonic() + 30
        while not all(metrics(p).get("parkwatch_ingest_broker_connected") == 1.0 for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingester did not come up; see {workdir}/ingest-{tag}-*.log")
            time.sleep(0.1)
        time.sleep(0.3)  # subscriptions
        ps = [psutil.Process(p.pid) for p in procs]
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in ps)  # start-up imports excluded
        pub = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--publish",
                str(data_file),
                "--port",
                str(mqtt_port),
                "--rate",
                str(rate),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert pub.stdout is not None
        start = float(pub.stdout.readline().split()[1])
        peak_rss = 0
        deadline = time.monotonic() + 600
        while True:
            peak_rss = max(peak_rss, sum(p.memory_info().rss for p in ps))
            written = sum(metrics(p).get("parkwatch_ingest_readings_total", 0) for p in ports)
            if written >= total:
                end = time.time()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {written} of {total} readings written; see {workdir}")
            time.sleep(0.05)
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in ps) - cpu0
        done_line = pub.stdout.readline().split()
        publish_s = float(done_line[1]) - start if done_line else float("nan")
        pub.wait(60)
        m = [metrics(p) for p in ports]
        p50 = max(x.get("parkwatch_ingest_e2e_latency_p50_seconds", 0) for x in m)
        p99 = max(x.get("parkwatch_ingest_e2e_latency_p99_seconds", 0) for x in m)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    seconds = end - start
    return Run(
        readings=total,
        seconds=seconds,
        stored=count_store(),
        cpu_cores=cpu / seconds,
        peak_rss_mb=peak_rss / 2**20 / instances,
        p50_s=p50,
        p99_s=p99,
        publish_s=publish_s,
    )


# ---------------------------------------------------------------- ceilings


def duckdb_ceiling(batches: list[tuple[str, bytes]], path: Path, batch_readings: int, dedupe: bool) -> float:
    """Readings/s of bulk appends of the same points (Arrow tables built beforehand)."""
    from contract import decode_batch, parse_topic
    from ingest.enrich import CellLocator
    from ingest.model import Part, WriteBatch
    from ingest.rows import batch_tables
    from storage.duckdb_store import DuckStore

    cells = CellLocator(10)
    parts = []
    for topic, payload in batches:
        t = parse_topic(topic, root=TOPIC_ROOT)
        d = decode_batch(payload.replace(f'"sent":{SENT_PLACEHOLDER}'.encode(), b'"sent":0'))
        parts.append(
            Part(park=t.park, gw=t.gateway, readings=d.readings, h3=cells.cells(t.gateway, d.readings))
        )
    chunks: list[list[Part]] = [[]]
    count = 0
    for p in parts:
        if count >= batch_readings:
            chunks.append([])
            count = 0
        chunks[-1].append(p)
        count += len(p.readings)
    tables = [batch_tables(WriteBatch(parts=c)) for c in chunks]
    total = sum(len(p.readings) for p in parts)
    store = DuckStore(str(path))
    t0 = time.perf_counter()
    for t in tables:
        store.append([(name, data, dedupe) for name, data, _ in t])
    elapsed = time.perf_counter() - t0
    store.close()
    return total / elapsed


def influx_ceiling(batches: list[tuple[str, bytes]], port: int, db: str, lines_per_write: int) -> float:
    """Readings/s of posting the same points as pre-encoded line protocol (gzip, like the ingester)."""
    from contract import decode_batch, parse_topic
    from ingest.enrich import CellLocator
    from ingest.model import Part, WriteBatch
    from ingest.points import encode_batch
    from storage.influx_http import InfluxHTTP

    cells = CellLocator(10)
    parts = []
    for topic, payload in batches:
        t = parse_topic(topic, root=TOPIC_ROOT)
        d = decode_batch(payload.replace(f'"sent":{SENT_PLACEHOLDER}'.encode(), b'"sent":0'))
        parts.append(
            Part(park=t.park, gw=t.gateway, readings=d.readings, h3=cells.cells(t.gateway, d.readings))
        )
    enc = encode_batch(WriteBatch(parts=parts), src="ceiling", now_ns=0)
    bodies = [
        "\n".join(enc.lines[i : i + lines_per_write]).encode()
        for i in range(0, len(enc.lines), lines_per_write)
    ]

    async def go() -> float:
        http = InfluxHTTP(url=f"http://127.0.0.1:{port}")
        await http.query(f'CREATE DATABASE "{db}"')
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(4)  # as many requests in flight as the ingester's InfluxDB default

        async def one(body: bytes) -> None:
            async with sem:
                await http.write(db, body)

        await asyncio.gather(*(one(b) for b in bodies))
        elapsed = time.perf_counter() - t0
        await http.aclose()
        return enc.readings / elapsed

    return asyncio.run(go())


def influx_stored(port: int, db: str) -> int:
    import json
    import urllib.parse

    total = 0
    # A field that every generated reading of the kind carries counts its points.
    for kind, field in {
        "cellular": "rsrp_dbm",
        "machine": "state",
        "energy": "power_kw",
        "environment": "temp_c",
        "broadband": "latency_ms",
        "generic": "num",
    }.items():
        q = urllib.parse.urlencode({"db": db, "q": f'SELECT count("{field}") FROM "{kind}"'})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{q}", timeout=120) as resp:
            body = json.load(resp)
        series = body["results"][0].get("series")
        total += int(series[0]["values"][0][1]) if series else 0
    return total


# ---------------------------------------------------------------- scenarios


def med(values: list[float]) -> float:
    return statistics.median(values)


def bench_duckdb(workdir: Path, mqtt_port: int, n: int, repeat: int) -> None:
    import duckdb

    batches = generate(n, sizes=(100, 100))
    data = workdir / "duck-batches.msgpack"
    data.write_bytes(msgspec.msgpack.encode(batches))
    total = n
    print(f"\n== DuckDB: {len(batches)} batches x 100 readings = {n} readings")

    ceil_plain, ceil_dedupe = [], []
    for i in range(repeat):
        ceil_plain.append(duckdb_ceiling(batches, workdir / f"ceil-plain-{i}.duckdb", 20000, dedupe=False))
        ceil_dedupe.append(duckdb_ceiling(batches, workdir / f"ceil-dedupe-{i}.duckdb", 20000, dedupe=True))
    runs = []
    for i in range(repeat):
        path = workdir / f"ingest-{i}.duckdb"

        def count(p: Path = path) -> int:
            with duckdb.connect(str(p), read_only=True) as con:
                return sum(
                    con.execute(f"SELECT count(*) FROM {k}").fetchone()[0]  # type: ignore[index]
                    for k in ("cellular", "machine", "energy", "environment", "broadband", "generic")
                )

        runs.append(
            run_ingest(
                workdir=workdir,
                mqtt_port=mqtt_port,
                sink_toml=f'[sink]\ntype = "duckdb"\npath = "{path}"\n{os.environ.get("BENCH_SINK_EXTRA", "")}',
                data_file=data,
                total=total,
                rate=0,
                count_store=count,
            )
        )
    rate = med([r.rate for r in runs])
    print(f"ceiling, append deduplicated within the batch:   {med(ceil_plain):>10,.0f} readings/s")
    print(
        f"ceiling, append + anti-join against the store:    {med(ceil_dedupe):>10,.0f} readings/s"
        f"  ({med(ceil_dedupe) / med(ceil_plain):.2f} x; the ingester uses it for replays only)"
    )
    print(
        f"ingest via Mosquitto (full speed):         {rate:>10,.0f} readings/s"
        f"  ({rate / med(ceil_plain):.2f} x ceiling)   goal >= 300,000"
    )
    print(f"  stored rows verified in the store:       {[r.stored for r in runs]} (expected {total} each)")
    print(
        f"  publisher alone took (median):           {med([r.publish_s for r in runs]):.2f} s for {total} readings"
        f" = {total / med([r.publish_s for r in runs]):,.0f} readings/s"
    )
    print(
        f"  ingester CPU: {med([r.cpu_cores for r in runs]):.2f} cores   peak RSS: {max(r.peak_rss_mb for r in runs):.0f} MB"
        f"   CPU per reading: {med([r.cpu_us_per_reading for r in runs]):.1f} us"
        f" (= {1e6 / med([r.cpu_us_per_reading for r in runs]):,.0f} readings/s per fully used core)"
    )
    half = rate / 2 / 100  # messages/s
    lat_path = workdir / "ingest-half.duckdb"
    lat = run_ingest(
        workdir=workdir,
        mqtt_port=mqtt_port,
        sink_toml=f'[sink]\ntype = "duckdb"\npath = "{lat_path}"',
        data_file=data,
        total=total,
        rate=half,
        count_store=lambda: -1,
    )
    print(
        f"latency at half rate ({half * 100:,.0f} readings/s): p50 {lat.p50_s * 1000:.0f} ms, p99 {lat.p99_s * 1000:.0f} ms"
        f"  (goal p99 <= 1000 ms)  RSS {lat.peak_rss_mb:.0f} MB"
    )


def bench_influx(workdir: Path, mqtt_port: int, n: int, repeat: int) -> None:
    from tests.servers import influxdb_server

    influx = influxdb_server(workdir / "influxdb")
    influx.start()
    try:
        batches = generate(n, sizes=(1, 500))
        data = workdir / "influx-batches.msgpack"
        data.write_bytes(msgspec.msgpack.encode(batches))
        print(f"\n== InfluxDB 1.x: {len(batches)} batches of 1-500 readings = {n} readings")
        ceilings, runs = [], []
        influxd = server_process(influx.workdir)
        influx_cpu: dict[str, list[float]] = {"ceiling": [], "ingest": []}
        for i in range(repeat):
            cpu0 = cpu_seconds(influxd)
            ceilings.append(influx_ceiling(batches, influx.port, f"ceiling_{i}", 10000))
            cpu1 = cpu_seconds(influxd)
            influx_cpu["ceiling"].append((cpu1 - cpu0) / n * 1e6)
            db = f"ingest_{i}"
            sink = f'[sink]\ntype = "influxdb"\nurl = "http://127.0.0.1:{influx.port}"\ndatabase = "{db}"'
            runs.append(
                run_ingest(
                    workdir=workdir,
                    mqtt_port=mqtt_port,
                    sink_toml=sink,
                    data_file=data,
                    total=n,
                    rate=0,
                    count_store=lambda db=db: influx_stored(influx.port, db),
                )
            )
            influx_cpu["ingest"].append((cpu_seconds(influxd) - cpu1) / n * 1e6)
        ceiling, rate = med(ceilings), med([r.rate for r in runs])
        print(f"ceiling, pre-encoded gzip line protocol:   {ceiling:>10,.0f} readings/s")
        print(
            f"ingest via Mosquitto (full speed):         {rate:>10,.0f} readings/s  ({rate / ceiling:.2f} x ceiling)"
            "   goal >= 0.9 x"
        )
        print(
            f"  influxd CPU per point: ceiling {med(influx_cpu['ceiling']):.1f} us, ingest"
            f" {med(influx_cpu['ingest']):.1f} us (incl. the verification counts; in the ingest run"
            " influxd shares the cores with Mosquitto, the publisher and the ingester)"
        )
        print(f"  stored points verified in InfluxDB:      {[r.stored for r in runs]} (expected {n} each)")
        print(
            f"  ingester CPU: {med([r.cpu_cores for r in runs]):.2f} cores   peak RSS: {max(r.peak_rss_mb for r in runs):.0f} MB"
            f"   CPU per reading: {med([r.cpu_us_per_reading for r in runs]):.1f} us"
            f" (= {1e6 / med([r.cpu_us_per_reading for r in runs]):,.0f} readings/s per fully used core)"
        )
        sink = f'[sink]\ntype = "influxdb"\nurl = "http://127.0.0.1:{influx.port}"\ndatabase = "half"'
        avg = n / len(batches)
        lat = run_ingest(
            workdir=workdir,
            mqtt_port=mqtt_port,
            sink_toml=sink,
            data_file=data,
            total=n,
            rate=rate / 2 / avg,
            count_store=lambda: -1,
        )
        print(
            f"latency at half rate ({rate / 2:,.0f} readings/s): p50 {lat.p50_s * 1000:.0f} ms, p99 {lat.p99_s * 1000:.0f} ms"
            f"  (goal p99 <= 1000 ms)"
        )
        sink = f'[sink]\ntype = "influxdb"\nurl = "http://127.0.0.1:{influx.port}"\ndatabase = "shared"'
        two = run_ingest(
            workdir=workdir,
            mqtt_port=mqtt_port,
            sink_toml=sink,
            data_file=data,
            total=n,
            rate=0,
            instances=2,
            count_store=lambda: influx_stored(influx.port, "shared"),
        )
        print(
            f"2 ingesters, shared subscription:          {two.rate:>10,.0f} readings/s  ({two.rate / rate:.2f} x one)"
            f"  stored {two.stored} (expected {n})"
        )
    finally:
        influx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (about a minute)")
    parser.add_argument("--sink", choices=["duckdb", "influxdb", "all"], default="all")
    parser.add_argument(
        "--readings", type=int, help="readings per run (default 300,000; 60,000 with --quick)"
    )
    parser.add_argument(
        "--repeat", type=int, help="runs per figure, medians reported (default 3; 1 with --quick)"
    )
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publisher_main(args.publish, args.port, args.rate)
        return
    from tests.servers import mosquitto_server

    n = args.readings or (60_000 if args.quick else 300_000)
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        workdir = Path(tmp)
        mosq = mosquitto_server(workdir / "mosquitto")
        mosq.start()
        try:
            print(
                f"parkwatch ingest benchmark: {os.cpu_count()} cores, {n:,} readings per run, median of {repeat}"
            )
            if args.sink in ("duckdb", "all"):
                bench_duckdb(workdir, mosq.port, n, repeat)
            if args.sink in ("influxdb", "all"):
                bench_influx(workdir, mosq.port, n, repeat)
        finally:
            mosq.stop()


if __name__ == "__main__":
    main()
