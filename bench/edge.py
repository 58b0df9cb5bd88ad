"""Edge agent benchmark: CPU (% of one core) and resident memory at a given reading rate.

Run from the repository root::

    python -m bench.edge                  # 200 readings/s, 20 s per phase, 3 runs
    python -m bench.edge --rate 400 --seconds 30

What it does, with a real Mosquitto from ``tests.servers``:

1. starts N simulated CNC machines of the firmware simulator (``firmware_sim.devices.modbus``,
   the machine register map fed by ``firmware_sim.models.machine``) in a process of their own,
   N = rate / 10, each polled every 0.1 s by the agent, so the agent makes ``rate`` readings/s;
2. runs ``python -m edge_agent.main`` as a subprocess in each phase and measures it
   (:mod:`bench.process_sampling`):
   * ``idle``: the agent with no collectors (the baseline of the same run);
   * ``live``: the full rate, broker up (collect -> disk buffer -> MQTT, PUBACK, keep until confirmed);
   * ``baseline`` (with ``--baseline DIR``): the live phase with the agent of another checkout,
     for a before/after measured in the same run;
   * ``poll-only floor``: the same Modbus requests on the same ticks from a bare loop over the
     poller the agent uses (:class:`edge_agent.collectors.modbus_tick.ModbusTickGroup`, one task
     per tick for all devices), answers not decoded; no readings, disk buffer or MQTT;
   * ``offline``: the full rate, broker down (everything goes to the disk buffer);
3. counts the readings a subscriber receives in the live phase.

CPU is the process's CPU time over the whole sampling window divided by the window (never a
median of 1 s samples, which the clock tick quantises); RSS is the median and peak of 1 s
samples. Each phase runs ``--repeat`` times (default 3), in turn: figures are medians with their
spread, each run with the 1-minute load average before and after. Nothing here passes or fails.
The budget is CPU <= 2 % of one core and RSS <= 40 MB at 200 readings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.process_sampling import Phases, Sample, run_sampled
from tests.edge_agent.helpers import Subscriber
from tests.servers import free_port, mosquitto_server

ROOT = Path(__file__).resolve().parents[1]

DEVICES = """
import asyncio, sys, time
from firmware_sim.devices.modbus import ModbusDevice
from firmware_sim.models.machine import MachineModel
from firmware_sim.registers import MACHINE_REGISTERS, machine_registers
from firmware_sim.scenario import MachineSpec
def registers(model):
    last = [time.monotonic()]
    def read():
        now = time.monotonic()
        model.step(now - last[0])
        last[0] = now
        return machine_registers(model)
    return read
async def main():
    models = [MachineModel(MachineSpec(id=f"cnc-{i:03d}", line="bench"), seed="bench") for i in range(int(sys.argv[1]))]
    devices = [ModbusDevice(name=m.spec.id, count=MACHINE_REGISTERS, registers=registers(m)) for m in models]
    for d in devices:
        await d.start()
    print(",".join(str(d.port) for d in devices), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
"""The simulated machines, in a process of their own (their CPU is not the agent's)."""


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


POLL_ONLY = """
import asyncio, sys
from edge_agent.collectors.modbus import ModbusPoller
from edge_agent.collectors.modbus_tick import ModbusTickGroup
from edge_agent.ticks import Ticks, next_tick
from settings.edge import ModbusDevice
ports = [int(p) for p in sys.argv[1].split(",")]
async def main():
    devices = [ModbusDevice(id=f"cnc-{i:03d}", host="127.0.0.1", port=p, poll_interval_s=0.1) for i, p in enumerate(ports)]
    group = ModbusTickGroup([ModbusPoller(d) for d in devices])
    ticks, loop = Ticks(), asyncio.get_running_loop()
    k, until_s = next_tick(loop.time(), 0.1)
    while True:
        for poll in await group.read(None, until_s=until_s):
            if not isinstance(poll.result, dict):
                sys.exit(f"poll-only floor: {poll.result}")
        await ticks.sleep_until(until_s)
        k += 1
        until_s = k * 0.1
asyncio.run(main())
"""
"""The floor: the agent's own Modbus TCP poller (one tick group, one task per tick) making the same
requests on the same ticks, answers left undecoded; no readings, disk buffer or MQTT."""


async def phase(name: str, tmp: Path, cfg: str, seconds: float, *, checkout: Path | None = None) -> Sample:
    """One agent run; ``checkout``: the agent of another source tree (``--baseline``)."""
    path = tmp / f"{name}.toml"
    path.write_text(cfg)
    argv = [sys.executable, "-m", "edge_agent.main", str(path)]
    if checkout is None:
        return await run_sampled(argv, seconds)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return await run_sampled(argv, seconds, cwd=str(checkout), env=env)


async def start_devices(n: int) -> tuple[asyncio.subprocess.Process, list[int]]:
    """The simulated machines' process and their Modbus TCP ports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DEVICES, str(n), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    return proc, [int(p) for p in line.decode().split(",")]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="readings per second (default: %(default)s)")
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="sampling time per phase (default: %(default)s)"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of every phase, medians reported (default: %(default)s)"
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/v0 <tag>`) whose agent runs the live phase "
        "too, in turn with this one, for a before/after within one run",
    )
    args = ap.parse_args()
    n = max(1, args.rate // 10)
    phases = Phases()
    received, elapsed = 0, 0.0
    idle, live, baseline, floor, offline = (
        "idle agent (no collectors)",
        "agent live (broker up)",
        "baseline checkout's agent live",
        "poll-only floor (agent's poller alone)",
        "agent offline (disk buffer only)",
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = mosquitto_server(tmp / "mq")
        broker.start()
        sim, ports = await start_devices(n)
        devices = [(f"cnc-{i:03d}", port) for i, port in enumerate(ports)]
        try:
            for r in range(args.repeat):
                idle_cfg = config(tmp / f"idle{r}", port=broker.port, root="bench/pw", devices=[], poll_s=0.1)
                await phases.measure(idle, phase("idle", tmp, idle_cfg, args.seconds))
                sub = Subscriber(broker.host, broker.port, "bench/pw", f"bench-sub-{r}")
                t0 = time.monotonic()
                live_cfg = config(
                    tmp / f"live{r}", port=broker.port, root="bench/pw", devices=devices, poll_s=0.1
                )
                await phases.measure(live, phase("live", tmp, live_cfg, args.seconds))
                elapsed += time.monotonic() - t0
                received += sub.count()
                sub.close()
                if args.baseline is not None:
                    base_cfg = config(
                        tmp / f"base{r}", port=broker.port, root="bench/base", devices=devices, poll_s=0.1
                    )
                    await phases.measure(
                        baseline, phase("base", tmp, base_cfg, args.seconds, checkout=args.baseline.resolve())
                    )
                poll_argv = [sys.executable, "-c", POLL_ONLY, ",".join(str(p) for p in ports)]
                await phases.measure(floor, run_sampled(poll_argv, args.seconds))
                off_cfg = config(
                    tmp / f"offline{r}", port=free_port(), root="bench/pw", devices=devices, poll_s=0.1
                )
                await phases.measure(offline, phase("offline", tmp, off_cfg, args.seconds))
        finally:
            sim.terminate()
            await sim.wait()
            broker.stop()

    print(
        f"edge agent at {args.rate} readings/s ({n} simulated Modbus TCP machines polled every 0.1 s), "
        f"{args.repeat} runs of {int(args.seconds)} s per phase; CPU = process CPU time / wall time over "
        "the whole window, RSS median/peak of 1 s samples"
    )
    print("\n".join(phases.table()))
    print(
        "poll-only floor: the agent's Modbus TCP poller (one tick group, one task per tick) making the same "
        "requests on the same ticks, answers not decoded, no readings, disk buffer or MQTT"
    )
    print(
        f"live readings received by a subscriber: {received} in {elapsed:.1f} s "
        f"(~{received / elapsed:.0f}/s including start-up and shutdown)"
    )
    print(
        f"agent live / poll-only floor: CPU x{phases.median(live) / max(phases.median(floor), 0.01):.2f}; "
        f"agent live RSS / idle agent RSS: x{phases.median(live, 'rss_mb') / phases.median(idle, 'rss_mb'):.2f}"
    )
    if args.baseline is not None:
        print(
            f"agent live / baseline checkout's agent live ({args.baseline}): "
            f"CPU x{phases.median(live) / max(phases.median(baseline), 0.01):.2f}, "
            f"RSS x{phases.median(live, 'rss_mb') / phases.median(baseline, 'rss_mb'):.2f}"
        )
    print(f"load average at the end (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("budget: CPU <= 2 % of one core, RSS <= 40 MB at 200 readings/s")


if __name__ == "__main__":
    asyncio.run(main())
