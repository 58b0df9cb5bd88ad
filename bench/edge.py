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

Figures are medians of the per-second samples (the machine is shared and noisy); nothing here
passes or fails. The issue's budget is RSS <= 60 MB and CPU <= 2 % of one core at 200 readings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


async def sample(pid: int, seconds: float, warmup_s: float) -> tuple[float, float, float, float]:
    """CPU % of one core (median of 1 s samples, and over the whole window), median and peak RSS MB."""
    p = psutil.Process(pid)
    await asyncio.sleep(warmup_s)
    cpu: list[float] = []
    rss: list[float] = []
    t_start, cpu_start = time.monotonic(), sum(p.cpu_times()[:2])
    last_t, last_cpu = t_start, cpu_start
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        now, used = time.monotonic(), sum(p.cpu_times()[:2])
        cpu.append(100.0 * (used - last_cpu) / (now - last_t))
        rss.append(p.memory_info().rss / 2**20)
        last_t, last_cpu = now, used
    whole = 100.0 * (last_cpu - cpu_start) / (last_t - t_start)
    return statistics.median(cpu), whole, statistics.median(rss), max(rss)


POLL_ONLY = """
import asyncio, sys, time
from edge_agent.collectors.modbus_tcp import ModbusTcpClient
ports = [int(p) for p in sys.argv[1].split(",")]
async def poll(port):
    c = ModbusTcpClient("127.0.0.1", port, timeout_s=2.0)
    nxt = time.monotonic()
    while True:
        await c.read_holding_registers(0, 14, unit=1)
        nxt += 0.1
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
async def main():
    await asyncio.gather(*(poll(p) for p in ports))
asyncio.run(main())
"""
"""The floor: the same Modbus requests at the same rate, with nothing else around them."""


async def run_sampled(argv: list[str], seconds: float) -> tuple[float, float, float, float]:
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


async def phase(name: str, tmp: Path, cfg: str, seconds: float) -> tuple[float, float, float, float]:
    path = tmp / f"{name}.toml"
    path.write_text(cfg)
    return await run_sampled([sys.executable, "-m", "edge_agent.main", str(path)], seconds)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="readings per second (default: %(default)s)")
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="sampling time per phase (default: %(default)s)"
    )
    args = ap.parse_args()
    n = max(1, args.rate // 10)
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
        try:
            idle = await phase(
                "idle",
                tmp,
                config(tmp / "idle", port=broker.port, root="bench/pw", devices=[], poll_s=0.1),
                args.seconds,
            )
            sub = Subscriber(broker.host, broker.port, "bench/pw", "bench-sub")
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            live = await phase(
                "live",
                tmp,
                config(tmp / "live", port=broker.port, root="bench/pw", devices=devices, poll_s=0.1),
                args.seconds,
            )
            elapsed = time.monotonic() - t0
            received = sub.count()
            sub.close()
            poll_only = await run_sampled(
                [sys.executable, "-c", POLL_ONLY, ",".join(str(p) for _, p in devices)], args.seconds
            )
            offline = await phase(
                "offline",
                tmp,
                config(tmp / "offline", port=free_port(), root="bench/pw", devices=devices, poll_s=0.1),
                args.seconds,
            )
        finally:
            for m in machines:
                await m.stop()
            broker.stop()
    print(
        f"edge agent at {args.rate} readings/s ({n} Modbus machines polled every 0.1 s); CPU: median of "
        f"{int(args.seconds)} one-second samples and mean over the window; RSS: median and peak"
    )
    print(f"{'phase':<36}{'CPU % median':>13}{'CPU % window':>13}{'RSS MB':>8}{'peak':>7}")
    rows = (
        ("idle agent (no collectors)", idle),
        ("poll-only floor (bare Modbus loop)", poll_only),
        ("agent live (broker up)", live),
        ("agent offline (disk buffer only)", offline),
    )
    for name, (cpu, whole, rss, peak) in rows:
        print(f"{name:<36}{cpu:>13.2f}{whole:>13.2f}{rss:>8.1f}{peak:>7.1f}")
    print(
        f"live readings received by a subscriber: {received} in {elapsed:.1f} s "
        f"(~{received / elapsed:.0f}/s including start-up and shutdown)"
    )
    print(
        f"agent live / poll-only floor: CPU x{live[1] / max(poll_only[1], 0.01):.2f}; "
        f"agent RSS / idle agent RSS: x{live[2] / idle[2]:.2f}"
    )
    print("budget (issue 7): RSS <= 60 MB, CPU <= 2 % of one core at 200 readings/s")


if __name__ == "__main__":
    asyncio.run(main())
