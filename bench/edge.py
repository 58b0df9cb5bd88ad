"""Edge agent benchmark: resident memory and CPU (% of one core) at a given reading rate.

Run from the repository root::

    python bench/edge.py                 # 200 readings/s, 20 s per phase
    python bench/edge.py --rate 400 --seconds 30

What it does, with a real Mosquitto from ``tests.servers``:

1. starts N Modbus TCP machines (the agreed simulator register map, pymodbus) in this process,
   N = rate / 10, each polled every 0.1 s by the agent, so the agent makes ``rate`` readings/s;
2. runs ``python -m edge_agent.main`` as a subprocess in three phases and samples its CPU time
   and RSS once per second with psutil:
   * ``idle``: the agent with no collectors (the baseline of the same run);
   * ``live``: the full rate, broker up (collect -> disk buffer -> MQTT, PUBACK, commit);
   * ``offline``: the full rate, broker down (everything goes to the disk buffer);
3. counts the readings a subscriber receives in the live phase (they must match the rate).

CPU is the process's CPU time over the whole sampling window divided by the window (per-second
samples are quantised by the clock tick, so they are not used); RSS is the median and peak of
per-second samples. Each phase runs ``--repeat`` times (default 3): figures are medians with
their spread, each printed with the 1-minute load average before and after. Nothing here passes
or fails. The budget is CPU <= 2 % of one core and RSS <= 40 MB at 200 readings/s.
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

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.edge_agent.devices import ModbusDevice, machine_registers
from tests.edge_agent.helpers import Subscriber
from tests.servers import free_port, mosquitto_server


def config(tmp: Path, *, port: int, root: str, devices: list[tuple[str, int]], poll_s: float) -> str:
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
    if devices:
        lines += ["[[collectors]]", 'type = "modbus"']
        for dev_id, dport in devices:
            lines += [
                "[[collectors.devices]]",
                f'id = "{dev_id}"',
                'host = "127.0.0.1"',
                f"port = {dport}",
                f"poll_interval_s = {poll_s}",
            ]
    return "\n".join(lines) + "\n"


Sample = tuple[float, float, float]
"""CPU % of one core over the whole window, median RSS MB, peak RSS MB."""


async def sample(pid: int, seconds: float, warmup_s: float) -> Sample:
    p = psutil.Process(pid)
    await asyncio.sleep(warmup_s)
    rss: list[float] = []
    t_start, cpu_start = time.monotonic(), sum(p.cpu_times()[:2])
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        rss.append(p.memory_info().rss / 2**20)
    whole = 100.0 * (sum(p.cpu_times()[:2]) - cpu_start) / (time.monotonic() - t_start)
    return whole, statistics.median(rss), max(rss)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


POLL_ONLY = """
import asyncio, sys, time
from edge_agent.collectors.modbus_bus import Bus
from settings.edge import ModbusBus
ports = [int(p) for p in sys.argv[1].split(",")]
async def poll(port):
    c = Bus(ModbusBus(id="b", transport="tcp", host="127.0.0.1", port=port), timeout_s=2.0)
    nxt = time.monotonic()
    while True:
        await c.read_holding_bytes(0, 14, unit=1, timeout_s=2.0)
        nxt += 0.1
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
async def main():
    await asyncio.gather(*(poll(p) for p in ports))
asyncio.run(main())
"""
"""The floor: the same Modbus requests at the same rate, with nothing else around them."""


async def run_sampled(argv: list[str], seconds: float) -> Sample:
    proc = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.DEVNULL)
    try:
        return await sample(proc.pid, seconds, warmup_s=3.0)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def phase(name: str, tmp: Path, cfg: str, seconds: float) -> Sample:
    path = tmp / f"{name}.toml"
    path.write_text(cfg)
    return await run_sampled([sys.executable, "-m", "edge_agent.main", str(path)], seconds)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="readings per second (default: %(default)s)")
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="sampling time per phase (default: %(default)s)"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of every phase, medians reported (default: %(default)s)"
    )
    args = ap.parse_args()
    n = max(1, args.rate // 10)
    figures: dict[str, list[Sample]] = {}
    loads: dict[str, list[str]] = {}
    received, elapsed = 0, 0.0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = mosquitto_server(tmp / "mq")
        broker.start()
        machines = [
            ModbusDevice(
                machine_registers(
                    state=2,
                    spindle_temp_c=60.0 + i,
                    motor_temp_c=40.0,
                    vibration_mm_s=2.0,
                    spindle_load_pct=50.0,
                    parts_total=i,
                    rejects_total=0,
                )
            )
            for i in range(n)
        ]
        for m in machines:
            await m.start()
        devices = [(f"cnc-{i:03d}", m.port) for i, m in enumerate(machines)]

        async def measure(name: str, run: Any) -> None:
            before = load()
            figures.setdefault(name, []).append(await run)
            loads.setdefault(name, []).append(f"{before}->{load()}")

        try:
            for _ in range(args.repeat):
                idle_cfg = config(tmp / "idle", port=broker.port, root="bench/pw", devices=[], poll_s=0.1)
                await measure("idle agent (no collectors)", phase("idle", tmp, idle_cfg, args.seconds))
                sub = Subscriber(broker.host, broker.port, "bench/pw", "bench-sub")
                t0 = time.monotonic()
                live_cfg = config(
                    tmp / "live", port=broker.port, root="bench/pw", devices=devices, poll_s=0.1
                )
                await measure("agent live (broker up)", phase("live", tmp, live_cfg, args.seconds))
                elapsed += time.monotonic() - t0
                received += sub.count()
                sub.close()
                poll_argv = [sys.executable, "-c", POLL_ONLY, ",".join(str(p) for _, p in devices)]
                await measure("poll-only floor (bare Modbus loop)", run_sampled(poll_argv, args.seconds))
                off_cfg = config(
                    tmp / "offline", port=free_port(), root="bench/pw", devices=devices, poll_s=0.1
                )
                await measure(
                    "agent offline (disk buffer only)", phase("offline", tmp, off_cfg, args.seconds)
                )
        finally:
            for m in machines:
                await m.stop()
            broker.stop()

    def med(name: str, i: int) -> float:
        return statistics.median(s[i] for s in figures[name])

    print(
        f"edge agent at {args.rate} readings/s ({n} Modbus machines polled every 0.1 s), {args.repeat} runs of"
        f" {int(args.seconds)} s per phase; CPU over the whole window, RSS median/peak of 1 s samples"
    )
    print(f"{'phase':<36}{'CPU % (median, min-max)':>26}{'RSS MB':>8}{'peak':>7}   load before->after")
    for name, samples in figures.items():
        cpus = [s[0] for s in samples]
        print(
            f"{name:<36}{med(name, 0):>12.2f} ({min(cpus):.2f}-{max(cpus):.2f})  "
            f"{med(name, 1):>8.1f}{max(s[2] for s in samples):>7.1f}   {' '.join(loads[name])}"
        )
    print(
        f"live readings received by a subscriber: {received} in {elapsed:.1f} s "
        f"(~{received / elapsed:.0f}/s including start-up and shutdown)"
    )
    live, floor, idle = (
        "agent live (broker up)",
        "poll-only floor (bare Modbus loop)",
        "idle agent (no collectors)",
    )
    print(
        f"agent live / poll-only floor: CPU x{med(live, 0) / max(med(floor, 0), 0.01):.2f}; "
        f"agent RSS / idle agent RSS: x{med(live, 1) / med(idle, 1):.2f}"
    )
    print("budget: CPU <= 2 % of one core, RSS <= 40 MB at 200 readings/s")


if __name__ == "__main__":
    asyncio.run(main())
