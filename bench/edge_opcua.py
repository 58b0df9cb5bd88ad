"""Edge agent benchmark with OPC UA: CPU (% of one core) and RSS with a subscription of N values/s.

Run from the repository root::

    python bench/edge_opcua.py                  # 200 values/s, 20 s per phase, 3 runs
    python bench/edge_opcua.py --rate 400 --seconds 30

What it does, with a real Mosquitto from ``tests.servers``:

1. starts an asyncua server in a subprocess (its CPU is not the agent's): ``rate / 5`` environment
   sensors of 5 values each; every 0.1 s a tenth of them get new values (one SourceTimestamp per
   sensor and change), so the server changes ``rate`` values per second, spread evenly;
2. runs ``python -m edge_agent.main`` as a subprocess in each phase and measures it with psutil:
   * ``idle``: the agent with no collectors (the baseline of the same run);
   * ``subscription``: the OPC UA collector with one monitored item per value (publishing
     interval 0.5 s), readings published to the broker;
   * ``poll``: the same node map with ``mode = "poll"``, every value read once per second;
   * ``asyncua floor``: a bare asyncua client subscribed to the same values, nothing else;
3. counts the readings a subscriber receives in the subscription phase.

CPU is the process's CPU time (user + system) over the whole sampling window divided by the
window's wall time; RSS is the median and peak of per-second samples (:mod:`bench.process_sampling`,
shared with ``bench/edge.py``). Each phase runs
``--repeat`` times (default 3): figures are medians with their spread, each printed with the
1-minute load average before and after. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.process_sampling import Sample, load, run_sampled
from tests.edge_agent.helpers import Subscriber
from tests.servers import free_port, mosquitto_server

FIELDS = ("temp_c", "humidity_pct", "pm25_ug_m3", "noise_dba", "co2_ppm")

SERVER = f"""
import asyncio, datetime as dt, random, sys
from asyncua import ua
from asyncua.server.server import Server
port, sensors = int(sys.argv[1]), int(sys.argv[2])
FIELDS = {FIELDS!r}
START = (28.0, 70.0, 35.0, 65.0, 600.0)
async def main():
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{{port}}/bench")
    ns = await server.register_namespace("urn:parkwatch:bench")
    nodes = []
    for i in range(sensors):
        obj = await server.nodes.objects.add_object(ns, f"env-{{i:03d}}")
        nodes.append([await obj.add_variable(ua.NodeId(f"env-{{i:03d}}.{{f}}", ns), f, v) for f, v in zip(FIELDS, START)])
    async with server:
        print("ready", flush=True)
        rng, tick, values = random.Random(1), 0, [list(START) for _ in range(sensors)]
        while True:
            await asyncio.sleep(0.1)
            now = ua.DateTime.now(dt.UTC)
            for i in range(tick % 10, sensors, 10):
                for k, node in enumerate(nodes[i]):
                    values[i][k] = round(START[k] + rng.uniform(-5.0, 5.0), 2)
                    await server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(values[i][k], ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now))
            tick += 1
asyncio.run(main())
"""
"""The OPC UA server under the agent: ``rate / 5`` sensors, a tenth of them changing every 0.1 s."""

FLOOR = f"""
import asyncio, sys
from asyncua import ua
from asyncua.client.client import Client
url, sensors = sys.argv[1], int(sys.argv[2])
FIELDS = {FIELDS!r}
async def main():
    client = Client(url)
    await client.connect()
    sub = await client.create_subscription(500, handler=None)
    ns = await client.get_namespace_index("urn:parkwatch:bench")
    nodes = [client.get_node(f"ns={{ns}};s=env-{{i:03d}}.{{f}}") for i in range(sensors) for f in FIELDS]
    await sub.subscribe_data_change(nodes, sampling_interval=250)
    async for _ in sub:
        pass
asyncio.run(main())
"""
"""The floor: asyncua alone, subscribed to the same values, doing nothing with them."""


def config(tmp: Path, *, port: int, root: str, url: str, sensors: int, mode: str | None) -> str:
    lines = [
        "[agent]",
        'park = "bench"',
        'gateway = "gw-bench"',
        f'state_dir = "{tmp}/state"',
        "status_interval_s = 10.0",
        "[broker]",
        f"port = {port}",
        f'topic_root = "{root}"',
        "[logging]",
        'level = "WARNING"',
    ]
    if mode is not None:
        lines += [
            "[[collectors]]",
            'type = "opcua"',
            f'url = "{url}"',
            f'mode = "{mode}"',
            "publishing_interval_s = 0.5",
            "sampling_interval_s = 0.25",
            "poll_interval_s = 1.0",
            "nodes = [",
            *[
                f'  {{ node_id = "ns=2;s=env-{i:03d}.{f}", device = "env-{i:03d}", kind = "environment", field = "{f}" }},'
                for i in range(sensors)
                for f in FIELDS
            ],
            "]",
        ]
    return "\n".join(lines) + "\n"


async def phase(name: str, tmp: Path, cfg: str, seconds: float, warmup_s: float) -> Sample:
    path = tmp / f"{name}.toml"
    path.write_text(cfg)
    return await run_sampled([sys.executable, "-m", "edge_agent.main", str(path)], seconds, warmup_s=warmup_s)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="values changed per second (default: %(default)s)")
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="sampling time per phase (default: %(default)s)"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of every phase, medians reported (default: %(default)s)"
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=8.0,
        help="seconds before sampling starts (import, connect, subscribe)",
    )
    args = ap.parse_args()
    sensors = max(10, args.rate // len(FIELDS))
    figures: dict[str, list[Sample]] = {}
    loads: dict[str, list[str]] = {}
    received, elapsed = 0, 0.0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = mosquitto_server(tmp / "mq")
        broker.start()
        opc_port = free_port()
        url = f"opc.tcp://127.0.0.1:{opc_port}/bench"
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SERVER, str(opc_port), str(sensors), stdout=asyncio.subprocess.PIPE
        )
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 120)
        assert line.startswith(b"ready"), line

        async def measure(name: str, run: Any) -> None:
            before = load()
            figures.setdefault(name, []).append(await run)
            loads.setdefault(name, []).append(f"{before}->{load()}")

        try:
            for r in range(args.repeat):
                common = {"port": broker.port, "root": "bench/pw", "url": url, "sensors": sensors}
                idle = config(tmp / f"idle{r}", mode=None, **common)  # type: ignore[arg-type]
                await measure("idle agent (no collectors)", phase("idle", tmp, idle, args.seconds, 3.0))
                sub = Subscriber(broker.host, broker.port, "bench/pw", f"bench-sub-{r}")
                t0 = time.monotonic()
                live = config(tmp / f"sub{r}", mode="subscribe", **common)  # type: ignore[arg-type]
                await measure(
                    "agent, OPC UA subscription", phase("sub", tmp, live, args.seconds, args.warmup)
                )
                elapsed += time.monotonic() - t0
                received += sub.count()
                sub.close()
                poll = config(tmp / f"poll{r}", mode="poll", **common)  # type: ignore[arg-type]
                await measure(
                    "agent, OPC UA poll every 1 s", phase("poll", tmp, poll, args.seconds, args.warmup)
                )
                floor = [sys.executable, "-c", FLOOR, url, str(sensors)]
                await measure(
                    "asyncua floor (bare subscription)",
                    run_sampled(floor, args.seconds, warmup_s=args.warmup),
                )
        finally:
            server.terminate()
            await server.wait()
            broker.stop()

    def med(name: str, i: int) -> float:
        return statistics.median(s[i] for s in figures[name])

    print(
        f"edge agent with OPC UA at {sensors * len(FIELDS) // 1} monitored values, {args.rate} value changes/s "
        f"({sensors} sensors x {len(FIELDS)} values, each sensor once per second), {args.repeat} runs of "
        f"{int(args.seconds)} s per phase; CPU = process CPU time / wall time over the window, "
        "RSS median/peak of 1 s samples"
    )
    print(f"{'phase':<38}{'CPU % (median, min-max)':>26}{'RSS MB':>8}{'peak':>7}   load before->after")
    for name, samples in figures.items():
        cpus = [s[0] for s in samples]
        print(
            f"{name:<38}{med(name, 0):>12.2f} ({min(cpus):.2f}-{max(cpus):.2f})  "
            f"{med(name, 1):>8.1f}{max(s[2] for s in samples):>7.1f}   {' '.join(loads[name])}"
        )
    print(
        f"readings received by a subscriber in the subscription phase: {received} in {elapsed:.1f} s "
        f"(~{received / elapsed:.0f}/s including start-up and shutdown; one reading = one sensor's 5 values)"
    )
    sub_name, floor_name, idle_name = (
        "agent, OPC UA subscription",
        "asyncua floor (bare subscription)",
        "idle agent (no collectors)",
    )
    print(
        f"agent subscription / asyncua floor: CPU x{med(sub_name, 0) / max(med(floor_name, 0), 0.01):.2f}; "
        f"agent subscription RSS / idle agent RSS: x{med(sub_name, 1) / med(idle_name, 1):.2f}"
    )
    print(f"load average now (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
