"""Ingest benchmark: Mosquitto → ``parkwatch ingest`` → InfluxDB (or DuckDB), against a direct-write ceiling.

Run from the repository root as a module (``bench/ingest.py`` would shadow the ``ingest`` package)::

    PYTHONPATH=$PWD python3 -m bench.ingest --quick     # smoke test (~3 min): NOT figures to quote
    PYTHONPATH=$PWD python3 -m bench.ingest             # full run, InfluxDB (~15 min on 2 cores)
    PYTHONPATH=$PWD python3 -m bench.ingest --sink duckdb --shapes 500 --encodings json

What it does, with a real Mosquitto and InfluxDB 1.x from ``tests.servers`` (or a DuckDB file):

1. measures the sink's ceiling: the same points written straight to the sink with the same
   client settings as the ingester (points per request, requests in flight, gzip exactly when the
   ingester compresses: not on a loopback url by default), encoded (and compressed) *before* the
   timed loop, so that it holds none of the ingester's work: the median of 3 timed samples of at least 100,000 points each, every sample printed with the load average;
2. pre-generates contract batches (mixed kinds) of exactly 1, 10 and 500 readings per message
   (``--shapes``), JSON and MessagePack (``--encodings``);
3. for each, starts ``python -m parkwatch ingest`` as a subprocess, then a publisher subprocess
   (a minimal MQTT client on a raw socket, QoS 1, up to 2,000 unacknowledged, ~40,000 messages/s
   on its own: paho's publisher capped the one-reading shape at ~3,000) that publishes every batch
   at full speed, its ``sent`` stamp patched in at publish time;
4. measures readings/s from the first publish until the ingester reports every reading written,
   then counts them *in the store*; the ingester's CPU time (user + system, from psutil, over the
   whole run after start-up) per reading and per message, and its peak RSS;
5. runs each shape with the default settings and with hand-tuned ones (``--tuned``), ``--repeat``
   times each, and prints defaults / hand-tuned;
6. repeats each shape at half the measured default rate (about 12 s) for p50/p99 end-to-end
   latency (publish → durable write, from the ingester's ``parkwatch_ingest_e2e_latency_seconds``
   histogram, interpolated within buckets);
7. the peak RSS of one ingester taking 1,000,000 readings at full rate (``--memory-readings``);
8. with ``--shared``: two ingester processes on one MQTT v5 shared subscription.

Every figure is printed with the 1-minute load average before and after its run; ratios are taken
only between figures of the same run. Figures are medians of ``--repeat`` runs with their spread
(min-max). On a shared machine readings/s and ratios move with the load; CPU time per reading and
per message moves least. Nothing here passes or fails: read the numbers. ``BENCH_INGEST_EXTRA``
adds lines to the default runs' ``[ingest]`` section, e.g. ``BENCH_INGEST_EXTRA=$'max_unacked =
4000'``, and ``BENCH_SINK_EXTRA`` to the DuckDB runs' ``[sink]`` section.

To compare with another version of the code in one run, unpack it (``git archive REV | tar -x -C
DIR``) and pass ``--baseline DIR``: its ingester runs with the defaults, interleaved with this
tree's runs. ``--no-ceiling`` and ``--no-latency`` leave out the other measurements, e.g.
``--shapes 1 --encodings json --no-tuned --no-ceiling --no-latency --memory-readings 0``.
``BENCH_PYSPY=/tmp/prof`` records every ingester with ``py-spy record -f raw`` (collapsed
stacks, ``/tmp/prof-<run>-<n>.txt``); py-spy's sampling slows the ingester a little.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
    n_readings: int, *, sizes: tuple[int, int], gateways: int = 20, seed: int = 7, encoding: str = "json"
) -> list[tuple[str, bytes]]:
    """Contract batches as (topic, payload), mixed kinds, unique reading identities; ``encoding``
    is ``json`` or ``msgpack``."""
    from contract import Batch, Broadband, Cellular, Energy, Environment, Generic, Machine, encode, topic_for

    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    out: list[tuple[str, bytes]] = []
    seqs = [0] * gateways
    made = 0
    while made < n_readings:  # every message has a size drawn from ``sizes`` (the last one may be cut)
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
        payload = encode(batch, "msgpack" if encoding == "msgpack" else "json")
        out.append((topic_for(f"hp-{g % 3}", gw, "telemetry", root=TOPIC_ROOT), payload))
    return out


# ---------------------------------------------------------------- publisher (separate process)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _stamp_patterns(now_ms: int) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """(placeholder, stamp) for a JSON and a MessagePack payload (both keep the payload's length)."""
    json_pair = (f'"sent":{SENT_PLACEHOLDER}'.encode(), f'"sent":{now_ms}'.encode())
    mp_pair = (
        b"\xa4sent\xcf" + SENT_PLACEHOLDER.to_bytes(8, "big"),
        b"\xa4sent\xcf" + now_ms.to_bytes(8, "big"),
    )
    return json_pair, mp_pair


def _mqtt_connect(port: int, client_id: str, *, clean: bool) -> Any:
    """A raw MQTT 3.1.1 connection (CONNECT answered by an accepting CONNACK)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = client_id.encode()
    flags = b"\x02" if clean else b"\x00"
    var = b"\x00\x04MQTT\x04" + flags + b"\x00\x00" + len(cid).to_bytes(2, "big") + cid  # no keepalive
    sock.sendall(b"\x10" + _varint(len(var)) + var)
    connack = sock.recv(4)
    if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"broker refused {client_id}: {connack!r}")
    return sock


def drop_session(port: int, client_id: str) -> None:
    """End a stopped ingester's persistent session (a clean connect discards it).

    Otherwise the broker keeps queueing every later run's messages for it (with persistence
    on: writing them all to disk every second), and each run slows down the next.
    """
    sock = _mqtt_connect(port, client_id, clean=True)
    sock.sendall(b"\xe0\x00")
    sock.close()


def publisher_main(path: str, port: int, rate: float, window: int = 2000) -> None:
    """Publish every (topic, payload) of ``path`` with QoS 1; print the start and end times.

    A minimal MQTT 3.1.1 client on a raw socket: packets are pre-framed and written in chunks
    with up to ``window`` unacknowledged, so that the publisher (~10x faster than paho's) is not
    what limits the ingester. The ``sent`` stamp is patched in at publish time (same length).
    No keepalive: the broker never drops it for silence while it waits for acks.
    """

    items: list[tuple[str, bytes]] = msgspec.msgpack.decode(
        Path(path).read_bytes(), type=list[tuple[str, bytes]]
    )
    sock = _mqtt_connect(port, f"bench-pub-{os.getpid()}", clean=True)
    heads = [len(t.encode()).to_bytes(2, "big") + t.encode() for t, _ in items]
    start = time.time()
    print(f"start {start:.6f} {time.process_time():.6f}", flush=True)
    sent = acked = 0
    buf = b""
    total = len(items)
    while acked < total:
        if sent < total and sent - acked < window:
            n = min(window - (sent - acked), 256, total - sent)
            if rate:
                due = int((time.time() - start) * rate) + 1
                n = min(n, max(due - sent, 0))
            if n:
                json_pair, mp_pair = _stamp_patterns(int(time.time() * 1000))
                chunk = []
                for i in range(sent, sent + n):
                    payload = items[i][1]
                    old, new = json_pair if payload[:1] == b"{" else mp_pair
                    payload = payload.replace(old, new, 1)
                    pid = (i % 65535) + 1
                    body = heads[i] + pid.to_bytes(2, "big")
                    chunk.append(b"\x32" + _varint(len(body) + len(payload)) + body + payload)
                sock.settimeout(None)
                sock.sendall(b"".join(chunk))
                sent += n
        blocking = sent - acked >= window or sent == total
        # Not blocked: poll for acks; with a rate, wait briefly so that the loop does not spin.
        sock.settimeout(None if blocking else (0.0005 if rate else 0.0))
        try:
            data = sock.recv(65536)
        except (BlockingIOError, TimeoutError):
            continue
        if not data:
            raise RuntimeError("the broker closed the publisher's connection")
        buf += data
        # PUBACK: 0x40 0x02 <packet id>; nothing else is sent to a client that only publishes.
        whole = len(buf) // 4 * 4
        acked += whole // 4
        buf = buf[whole:]
    print(f"done {time.time():.6f} {time.process_time():.6f}", flush=True)
    sock.sendall(b"\xe0\x00")
    sock.close()


# ---------------------------------------------------------------- helpers


def server_process(workdir: Path) -> Any:
    """The psutil process of a server started from ``tests.servers`` in ``workdir``."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if any(str(workdir) in part for part in proc.info["cmdline"] or []):
            return proc
    raise RuntimeError(f"no server process for {workdir}")


def load() -> str:
    """The 1-minute load average, printed beside every figure (2 cores: above ~2 the figure is disturbed)."""
    return f"{os.getloadavg()[0]:.2f}"


def cpu_seconds(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def metrics(port: int) -> dict[str, float]:
    """The unlabelled ``parkwatch_ingest_*`` samples of one ingester."""
    text = _scrape(port)
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(parkwatch_ingest_\w+) (\S+)$", text, re.M)}


def latency_buckets(ports: list[int]) -> dict[float, float]:
    """The end-to-end latency histogram of all ingesters together: upper bound (s) → cumulative count."""
    out: dict[float, float] = {}
    pattern = r'^parkwatch_ingest_e2e_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$'
    for port in ports:
        for m in re.finditer(pattern, _scrape(port), re.M):
            le = float(m.group(1))  # "+Inf" parses as inf
            out[le] = out.get(le, 0.0) + float(m.group(2))
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """A quantile from cumulative bucket counts, interpolated within its bucket (as PromQL does)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total == 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower  # beyond the last finite bound: report that bound
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
        lower, below = bound, count
    return lower


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
    messages: int = 0
    load_before: str = ""
    load_after: str = ""
    others_cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    """CPU seconds of the other processes of the pipeline over the run: the broker, the
    publisher and influxd (the machine's other load is not counted)."""

    def others_us_per_reading(self, name: str) -> float:
        return self.others_cpu_s.get(name, float("nan")) / self.readings * 1e6

    @property
    def rate(self) -> float:
        return self.readings / self.seconds

    @property
    def cpu_us_per_reading(self) -> float:
        """Ingester CPU time per reading: robust against other load on a shared machine."""
        return self.cpu_cores * self.seconds / self.readings * 1e6

    @property
    def cpu_us_per_message(self) -> float:
        return self.cpu_cores * self.seconds / max(self.messages, 1) * 1e6


def start_ingester(config: Path, log: Path, code: Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m parkwatch ingest`` from this tree, or from the tree ``code`` (a baseline)."""
    env = None
    if code is not None:
        env = {**os.environ, "PYTHONPATH": str(code)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch", "ingest", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=code or ROOT,
            env=env,
        )


def write_config(
    path: Path,
    *,
    mqtt_port: int,
    sink: str,
    client_id: str,
    metrics_port: int,
    share: str = "",
    extra: str | None = None,
) -> None:
    ingest_extra = os.environ.get("BENCH_INGEST_EXTRA", "") if extra is None else extra
    path.write_text(
        f'[broker]\nport = {mqtt_port}\ntopic_root = "{TOPIC_ROOT}"\n'
        f"{sink}\n"
        f'[ingest]\nclient_id = "{client_id}"\nshare_group = "{share}"\nspool_dir = "{path.parent / ("spool-" + client_id)}"\n'
        f"metrics_port = {metrics_port}\n{ingest_extra}\n"
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
    extra: str | None = None,
    code: Path | None = None,
) -> Run:
    """One measured run: ingester process(es) up, publisher process, wait for all readings written."""
    import psutil

    from tests.servers import free_port

    tag = f"{int(time.time() * 1000) % 10**8}"
    load_before = load()
    messages = len(msgspec.msgpack.decode(data_file.read_bytes()))
    share = f"g{tag}" if instances > 1 else ""
    procs, ports = [], []
    spies: list[subprocess.Popen[bytes]] = []
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
            extra=extra,
        )
        procs.append(start_ingester(cfg, workdir / f"ingest-{tag}-{i}.log", code))
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
        servers = {
            label: server_process(workdir / sub)
            for label, sub in (("broker", "mosquitto"), ("influxd", "influxdb"))
            if (workdir / sub).exists()
        }
        servers_cpu0 = {label: cpu_seconds(proc) for label, proc in servers.items()}
        profile = os.environ.get("BENCH_PYSPY", "")
        spies.extend(
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    f"{profile}-{tag}-{i}.txt",
                    "--pid",
                    str(p.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, p in enumerate(procs)
            if profile
        )
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
        start_line = pub.stdout.readline().split()
        start, pub_cpu0 = float(start_line[1]), float(start_line[2])
        peak_rss = 0
        deadline = time.monotonic() + 600
        scrape_at = 0.0
        while True:
            peak_rss = max(peak_rss, sum(p.memory_info().rss for p in ps))  # costs the ingester nothing
            if time.time() >= scrape_at:
                written = sum(metrics(p).get("parkwatch_ingest_readings_total", 0) for p in ports)
                if written >= total:
                    end = time.time()
                    break
                # A scrape costs the ingester CPU (~1 ms to render): scrape every 20 ms only near
                # the expected end, at most every 0.5 s before it (the end time stays within ~20 ms).
                rate_so_far = written / max(time.time() - start, 1e-3)
                scrape_at = time.time() + min(0.5, (total - written) / max(rate_so_far, 1.0) / 2)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {written} of {total} readings written; see {workdir}")
            time.sleep(0.02)
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in ps) - cpu0
        others = {label: cpu_seconds(proc) - servers_cpu0[label] for label, proc in servers.items()}
        done_line = pub.stdout.readline().split()
        publish_s = float(done_line[1]) - start if done_line else float("nan")
        if done_line:
            others["publisher"] = float(done_line[2]) - pub_cpu0
        pub.wait(60)
        # Fresh processes per run: their histograms hold exactly this run's messages.
        latency = latency_buckets(ports)
        p50 = histogram_quantile(0.5, latency)
        p99 = histogram_quantile(0.99, latency)
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(60)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        for i in range(instances):
            drop_session(mqtt_port, f"bench-{tag}-{i}")
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
        messages=messages,
        load_before=load_before,
        load_after=load(),
        others_cpu_s=others,
    )


# ---------------------------------------------------------------- ceilings

CEILING_SAMPLES = 3
CEILING_POINTS = 100_000


def _parts(batches: list[tuple[str, bytes]]) -> list[Any]:
    from contract import decode_batch, parse_topic
    from ingest.enrich import CellLocator
    from ingest.model import Part

    cells = CellLocator(10)
    parts = []
    for topic, payload in batches:
        t = parse_topic(topic, root=TOPIC_ROOT)
        d = decode_batch(payload.replace(f'"sent":{SENT_PLACEHOLDER}'.encode(), b'"sent":0'))
        parts.append(
            Part(park=t.park, gw=t.gateway, readings=d.readings, h3=cells.cells(t.gateway, d.readings))
        )
    return parts


def duckdb_ceiling(parts: list[Any], path: Path, batch_readings: int, dedupe: bool) -> float:
    """Readings/s of bulk appends of the same points (Arrow tables built before the timed loop)."""
    from ingest.model import WriteBatch
    from ingest.rows import batch_tables
    from storage.duckdb_store import DuckStore

    chunks: list[list[Any]] = [[]]
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


def influx_ceiling(
    parts: list[Any], port: int, db: str, lines_per_write: int, in_flight: int, *, gzip_bodies: bool
) -> float:
    """Readings/s of posting the same points as line protocol encoded (and gzip-compressed when the
    ingester would compress them) before the timed loop, with the ingester's points per request and
    requests in flight."""
    import httpx
    from isal import igzip

    from ingest.model import WriteBatch
    from ingest.points import encode_batch

    enc = encode_batch(WriteBatch(parts=parts), src="ceiling", now_ns=0)
    raw = [
        "\n".join(enc.lines[i : i + lines_per_write]).encode()
        for i in range(0, len(enc.lines), lines_per_write)
    ]
    bodies = [igzip.compress(b, compresslevel=1) for b in raw] if gzip_bodies else raw
    headers = {"Content-Encoding": "gzip"} if gzip_bodies else {}

    async def go() -> float:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            (await http.post("/query", params={"q": f'CREATE DATABASE "{db}"'})).raise_for_status()
            sem = asyncio.Semaphore(in_flight)

            async def one(body: bytes) -> None:
                async with sem:
                    resp = await http.post("/write", params={"db": db}, content=body, headers=headers)
                    resp.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(one(b) for b in bodies))
            return enc.readings / (time.perf_counter() - t0)

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


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """Median with min-max, e.g. ``61,200 (58,900-63,000)``."""
    return f"{med(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def ceiling_samples(name: str, measure: Any) -> float:
    """Median of CEILING_SAMPLES timed samples, each printed with the load average around it."""
    values = []
    for i in range(CEILING_SAMPLES):
        before = load()
        values.append(measure(i))
        print(f"  ceiling sample {i + 1}: {values[-1]:>10,.0f} readings/s   load {before} -> {load()}")
    print(f"{name}: {spread(values)} readings/s (median, min-max of {CEILING_SAMPLES})")
    return med(values)


@dataclass
class Sink:
    """How one sink is set up, measured at its ceiling and counted."""

    name: str
    toml: Any  # (database or file name) -> the [sink] section
    count: Any  # (database or file name) -> readings in the store
    ceiling: float = 0.0


def print_runs(label: str, runs: list[Run], ceiling: float) -> float:
    rate = med([r.rate for r in runs])
    of_ceiling = f"  {rate / ceiling:.2f} x ceiling" if ceiling else ""
    print(
        f"  {label:<11} {spread([r.rate for r in runs]):>30} readings/s{of_ceiling}"
        f"   load {runs[0].load_before} -> {runs[-1].load_after}"
    )
    print(
        f"  {'':<11} CPU {spread([r.cpu_us_per_reading for r in runs], '.1f')} us/reading,"
        f" {spread([r.cpu_us_per_message for r in runs], '.1f')} us/message;"
        f" {med([r.cpu_cores for r in runs]):.2f} cores; peak RSS {max(r.peak_rss_mb for r in runs):.0f} MB;"
        f" stored {sorted({r.stored for r in runs})} of {runs[0].readings}"
    )
    others = [
        name for name in ("broker", "publisher", "influxd") if all(name in r.others_cpu_s for r in runs)
    ]
    if others:
        print(
            f"  {'':<11} the rest of the pipeline, CPU per reading: "
            + ", ".join(
                f"{name} {spread([r.others_us_per_reading(name) for r in runs], '.1f')} us" for name in others
            )
        )
    return rate


LATENCY_RUN_S = 12.0
"""Length of a run at half rate: long enough for a p99 over thousands of messages, short enough
that the 1-reading shape (the slowest in readings/s) keeps the whole bench under ~15 minutes."""


def bench_shapes(workdir: Path, mqtt_port: int, sink: Sink, args: argparse.Namespace) -> None:
    """Every encoding and message shape: defaults (and hand-tuned), then p99 at half that rate."""
    n, repeat = args.readings, args.repeat
    for encoding in args.encodings:
        for size in args.shapes:
            batches = generate(n, sizes=(size, size), encoding=encoding)
            data = workdir / f"{sink.name}-{encoding}-{size}.msgpack"
            data.write_bytes(msgspec.msgpack.encode(batches))
            print(
                f"\n-- {sink.name}, {encoding}, {size} reading(s) per message: {len(batches):,} messages,"
                f" {n:,} readings per run, median (min-max) of {repeat}"
            )
            settings_list: list[tuple[str, str | None, Path | None]] = [("defaults", None, None)]
            if args.baseline:
                settings_list.append(("baseline", None, args.baseline))
            if args.compare_tuned:
                settings_list.append(("hand-tuned", args.tuned, None))
            # Interleaved (defaults, baseline, hand-tuned, defaults, ...): a change in the load
            # during the runs touches every label alike.
            all_runs: dict[str, list[Run]] = {label: [] for label, _, _ in settings_list}
            for i in range(repeat):
                for label, extra, code in settings_list:
                    store = f"{label[:4]}_{encoding}_{size}_{i}"
                    all_runs[label].append(
                        run_ingest(
                            workdir=workdir,
                            mqtt_port=mqtt_port,
                            sink_toml=sink.toml(store),
                            data_file=data,
                            total=n,
                            rate=0,
                            count_store=lambda s=store: sink.count(s),
                            extra=extra,
                            code=code,
                        )
                    )
            rates = {label: print_runs(label, runs, sink.ceiling) for label, runs in all_runs.items()}
            if args.baseline:
                cpu = {k: med([r.cpu_us_per_message for r in v]) for k, v in all_runs.items()}
                print(
                    f"  defaults / baseline: CPU per message {cpu['defaults'] / cpu['baseline']:.2f},"
                    f" readings/s {rates['defaults'] / rates['baseline']:.2f}   (baseline: {args.baseline})"
                )
            if args.compare_tuned:
                print(
                    f"  defaults / hand-tuned: {rates['defaults'] / rates['hand-tuned']:.2f}   goal >= 0.80"
                )
            if not args.latency:
                continue
            half = rates["defaults"] / 2
            take = min(len(batches), max(int(half / size * LATENCY_RUN_S), 1))
            part = workdir / f"{sink.name}-{encoding}-{size}-half.msgpack"
            part.write_bytes(msgspec.msgpack.encode(batches[:take]))
            lat = run_ingest(
                workdir=workdir,
                mqtt_port=mqtt_port,
                sink_toml=sink.toml(f"half_{encoding}_{size}"),
                data_file=part,
                total=sum(min(size, n - i * size) for i in range(take)),
                rate=half / size,
                count_store=lambda: -1,
            )
            print(
                f"  latency at half rate ({half:,.0f} readings/s, {take:,} messages): p50 {lat.p50_s * 1000:.0f} ms,"
                f" p99 {lat.p99_s * 1000:.0f} ms (goal p99 <= 1000 ms); peak RSS {lat.peak_rss_mb:.0f} MB"
                f"   load {lat.load_before} -> {lat.load_after}"
            )


def bench_memory(workdir: Path, mqtt_port: int, sink: Sink, readings: int) -> None:
    """Peak RSS of one ingester with default settings taking ``readings`` at full rate."""
    batches = generate(readings, sizes=(500, 500))
    data = workdir / f"{sink.name}-memory.msgpack"
    data.write_bytes(msgspec.msgpack.encode(batches))
    del batches
    run = run_ingest(
        workdir=workdir,
        mqtt_port=mqtt_port,
        sink_toml=sink.toml("memory"),
        data_file=data,
        total=readings,
        rate=0,
        count_store=lambda: sink.count("memory"),
    )
    print(
        f"\n-- {sink.name}, memory: {readings:,} readings (JSON, 500 per message) at full rate, defaults:"
        f" peak RSS {run.peak_rss_mb:.0f} MB (goal <= 200 MB); {run.rate:,.0f} readings/s,"
        f" CPU {run.cpu_us_per_reading:.1f} us/reading; stored {run.stored} of {readings}"
        f"   load {run.load_before} -> {run.load_after}"
    )


def duckdb_sink(workdir: Path) -> Sink:
    import duckdb

    def count(name: str) -> int:
        with duckdb.connect(str(workdir / f"{name}.duckdb"), read_only=True) as con:
            return sum(
                con.execute(f"SELECT count(*) FROM {k}").fetchone()[0]  # type: ignore[index]
                for k in ("cellular", "machine", "energy", "environment", "broadband", "generic")
            )

    extra = os.environ.get("BENCH_SINK_EXTRA", "")
    return Sink(
        name="DuckDB",
        toml=lambda name: f'[sink]\ntype = "duckdb"\npath = "{workdir / f"{name}.duckdb"}"\n{extra}',
        count=count,
    )


def bench_duckdb(workdir: Path, mqtt_port: int, args: argparse.Namespace) -> None:
    from settings.ingest import IngestOptions

    batch_readings = IngestOptions().batch_readings
    parts = _parts(generate(max(CEILING_POINTS, args.readings), sizes=(100, 100)))
    print(f"\n== DuckDB (ceiling: {sum(len(p.readings) for p in parts):,} points per sample,"
          f" appends of {batch_readings:,} readings as the ingester's batches)")  # fmt: skip
    sink = duckdb_sink(workdir)
    if args.ceiling:
        sink.ceiling = ceiling_samples(
            "ceiling, append",
            lambda i: duckdb_ceiling(parts, workdir / f"ceil-{i}.duckdb", batch_readings, dedupe=False),
        )
    bench_shapes(workdir, mqtt_port, sink, args)


def bench_influx(workdir: Path, mqtt_port: int, args: argparse.Namespace) -> None:
    from settings.ingest import InfluxSinkSettings
    from storage.influx_http import use_gzip
    from tests.servers import influxdb_server

    influx = influxdb_server(workdir / "influxdb")
    influx.start()
    try:
        defaults = InfluxSinkSettings(url="http://127.0.0.1:8086", database="x")
        in_flight = 4  # the ingester's write_concurrency for InfluxDB (0 = 4)
        # The ceiling compresses exactly when the ingester does for this (loopback) url.
        gzip_bodies = use_gzip(defaults.gzip, defaults.url)
        compression = "gzip" if gzip_bodies else f"no gzip (gzip = {defaults.gzip!r} on a loopback url)"
        parts = _parts(generate(max(CEILING_POINTS, args.readings), sizes=(100, 100)))
        print(
            f"\n== InfluxDB 1.x (ceiling: {sum(len(p.readings) for p in parts):,} points per sample,"
            f" {defaults.max_lines_per_write:,} points per request, {in_flight} requests in flight, {compression})"
        )
        influxd = server_process(influx.workdir)
        cpu0 = cpu_seconds(influxd)
        ceiling = 0.0
        if args.ceiling:
            ceiling = ceiling_samples(
                f"ceiling, pre-encoded line protocol, {compression}",
                lambda i: influx_ceiling(
                    parts,
                    influx.port,
                    f"ceiling_{i}",
                    defaults.max_lines_per_write,
                    in_flight,
                    gzip_bodies=gzip_bodies,
                ),
            )
            per_point = (cpu_seconds(influxd) - cpu0) / (CEILING_SAMPLES * len(parts) * 100) * 1e6
            print(f"  influxd CPU per point at the ceiling: {per_point:.1f} us")
        sink = Sink(
            name="InfluxDB",
            toml=lambda db: (
                f'[sink]\ntype = "influxdb"\nurl = "http://127.0.0.1:{influx.port}"\ndatabase = "{db}"'
            ),
            count=lambda db: influx_stored(influx.port, db),
            ceiling=ceiling,
        )
        bench_shapes(workdir, mqtt_port, sink, args)
        if args.memory_readings:
            bench_memory(workdir, mqtt_port, sink, args.memory_readings)
        if args.shared:
            batches = generate(args.readings, sizes=(500, 500))
            data = workdir / "shared.msgpack"
            data.write_bytes(msgspec.msgpack.encode(batches))
            runs = [
                run_ingest(
                    workdir=workdir,
                    mqtt_port=mqtt_port,
                    sink_toml=sink.toml(f"shared_{i}"),
                    data_file=data,
                    total=args.readings,
                    rate=0,
                    instances=instances,
                    count_store=lambda i=i: influx_stored(influx.port, f"shared_{i}"),
                )
                for i, instances in enumerate((1, 2))
            ]
            print(
                f"\n-- 2 ingesters on a shared subscription (500 per message): {runs[1].rate:,.0f} readings/s,"
                f" {runs[1].rate / runs[0].rate:.2f} x one ingester in the same run; stored {runs[1].stored}"
                f" of {args.readings}   load {runs[0].load_before} -> {runs[1].load_after}"
            )
    finally:
        influx.stop()


TUNED_EXTRA = "max_unacked = 65535\nmax_unacked_mb = 64\nbatch_readings = 20000\nflush_interval_s = 0.5"
"""Hand-tuned for throughput: every bound raised (more memory and latency allowed)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 30,000 readings, 1 run per figure, no memory run; its figures are not for quoting",
    )
    parser.add_argument("--sink", choices=["duckdb", "influxdb", "all"], default="influxdb")
    parser.add_argument(
        "--readings",
        type=int,
        help="readings per run (default 300,000, long enough that start and end weigh little; 30,000 with --quick)",
    )
    parser.add_argument(
        "--repeat", type=int, help="runs per figure, medians reported (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--shapes", default="1,10,500", help="readings per message, comma-separated (default: 1,10,500)"
    )
    parser.add_argument(
        "--encodings",
        default="json,msgpack",
        help="payload encodings, comma-separated (default: json,msgpack)",
    )
    parser.add_argument(
        "--no-tuned",
        dest="compare_tuned",
        action="store_false",
        help="skip the hand-tuned runs (default: every shape with the defaults and with --tuned)",
    )
    parser.add_argument(
        "--tuned", default=TUNED_EXTRA, help=f"hand-tuned [ingest] lines (default: {TUNED_EXTRA!r})"
    )
    parser.add_argument(
        "--memory-readings",
        type=int,
        help="readings of the peak-RSS run at full rate (InfluxDB; default 1,000,000; 0 skips it)",
    )
    parser.add_argument(
        "--shared", action="store_true", help="also run two ingesters on a shared subscription"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run the ingester of another source tree (e.g. an unpacked `git archive`) with the"
        " defaults, interleaved with this tree's runs, and print the ratios",
    )
    parser.add_argument(
        "--no-latency", dest="latency", action="store_false", help="skip the runs at half rate (p50/p99)"
    )
    parser.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="skip the sink's ceiling (the 'x ceiling' column is then left out)",
    )
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publisher_main(args.publish, args.port, args.rate)
        return
    from tests.servers import mosquitto_server

    args.readings = args.readings or (30_000 if args.quick else 300_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.shapes = [int(s) for s in args.shapes.split(",") if s]
    args.encodings = [e for e in args.encodings.split(",") if e]
    if args.memory_readings is None:
        args.memory_readings = 0 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        workdir = Path(tmp)
        mosq = mosquitto_server(workdir / "mosquitto")
        mosq.start()
        try:
            if args.quick:
                print("QUICK MODE (smoke test): short runs, one of each; these figures are NOT for quoting.")
            print(
                f"parkwatch ingest benchmark: {os.cpu_count()} cores, load {load()}, {args.readings:,} readings"
                f" per run, median of {args.repeat}, message shapes {args.shapes}, encodings {args.encodings}"
            )
            print(f"hand-tuned settings: {args.tuned!r}" if args.compare_tuned else "defaults only")
            if args.sink in ("duckdb", "all"):
                bench_duckdb(workdir, mosq.port, args)
            if args.sink in ("influxdb", "all"):
                bench_influx(workdir, mosq.port, args)
        finally:
            mosq.stop()


if __name__ == "__main__":
    main()
