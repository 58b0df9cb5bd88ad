"""Modbus on the gateway: the retired hand-written Modbus TCP client against pymodbus.

Run from the repository root::

    python bench/edge_modbus.py                        # 20 devices every 0.1 s, 20 s windows, 3 runs
    python bench/edge_modbus.py --devices 40 --seconds 30

For each client, a fresh process loads the agent's modules (``edge_agent.agent``: MQTT, buffer,
settings, as ``parkwatch edge run`` does) and polls N simulated machines (14 holding registers,
one request per poll) with the agent's own ``ModbusPoller`` every ``--poll-s`` seconds. Only the
line under the poller changes:

* ``hand-written TCP``: the agent's former client (``bench/modbus_handwritten.py``), one asyncio
  stream per device; pymodbus is never imported;
* ``pymodbus TCP``: pymodbus' ``AsyncModbusTcpClient``, one connection per device (the agent's
  Modbus TCP client until ``edge_agent/collectors/modbus_tcp.py`` replaced it);
* ``agent TCP``: ``edge_agent.collectors.modbus_bus`` with Modbus TCP (``modbus_tcp.py``);
* ``pymodbus RTU over TCP``: the N devices as units 1..N of one RTU line behind one serial gateway
  (one request at a time on the line);
* ``pymodbus RTU serial``: the same line on a socat pseudo-terminal pair (a pty has no baud rate,
  so this is the CPU of the serial transport, not the time on a real 9600 bit/s wire).

The devices are pymodbus servers in this process (their CPU is not counted). The polling process
measures itself: CPU per poll = process CPU time (user + system) over a window of polls divided
by the polls in it, after a warm-up; RSS is VmRSS at the end of the window and VmHWM (peak).
Each client runs ``--repeat`` times in turn; the figures are medians, with the spread of CPU and
the 1-minute load average before and after each run. Install size is the on-disk size of the
pymodbus and pyserial distributions as installed here (package directories with their compiled
``__pycache__``, and the ``.dist-info``). Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_sim.devices.modbus import ModbusDevice, ModbusRtuLine, RtuUnit
from tests.edge_agent.devices import machine_registers, pty_pair

ROOT = Path(__file__).resolve().parents[1]

HARNESS = """
import asyncio, json, os, struct, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["bench_dir"])
import edge_agent.agent  # the agent's own modules, loaded as `parkwatch edge run` loads them
from edge_agent.collectors.modbus import ModbusPoller, build
from settings.edge import ModbusBus, ModbusCollector, ModbusDevice

client, n, poll_s = args["client"], args["devices"], args["poll_s"]
if client == "hand-written TCP":
    from modbus_handwritten import ModbusTcpClient

    class HandwrittenLine:
        def __init__(self, port):
            self.c = ModbusTcpClient("127.0.0.1", port, timeout_s=2.0)
        async def read_holding_bytes(self, address, count, *, unit, timeout_s):
            return await self.c.read_holding_bytes(address, count, unit=unit)
        async def release(self):
            await self.c.aclose()

    pollers = [ModbusPoller(ModbusDevice(id=f"cnc-{i}", host="127.0.0.1", port=p), bus=HandwrittenLine(p))
               for i, p in enumerate(args["ports"])]
elif client == "pymodbus TCP":
    from pymodbus.client import AsyncModbusTcpClient

    class PymodbusLine:
        def __init__(self, port):
            self.port, self.c = port, None
        async def read_holding_bytes(self, address, count, *, unit, timeout_s):
            if self.c is None:  # pymodbus wants the running loop when it is built
                self.c = AsyncModbusTcpClient("127.0.0.1", port=self.port, timeout=3.0, retries=0, reconnect_delay=0)
            if not self.c.connected:
                await self.c.connect()
            async with asyncio.timeout(timeout_s):
                answer = await self.c.read_holding_registers(address, count=count, device_id=unit)
            return struct.pack(f">{count}H", *answer.registers)
        async def release(self):
            if self.c is not None:
                self.c.close()

    pollers = [ModbusPoller(ModbusDevice(id=f"cnc-{i}", host="127.0.0.1", port=p), bus=PymodbusLine(p))
               for i, p in enumerate(args["ports"])]
elif client == "agent TCP":
    pollers = build(ModbusCollector(devices=[ModbusDevice(id=f"cnc-{i}", host="127.0.0.1", port=p)
                                             for i, p in enumerate(args["ports"])]))
else:
    if client == "pymodbus RTU over TCP":
        bus = ModbusBus(id="line", transport="rtu_over_tcp", host="127.0.0.1", port=args["rtu_port"])
    else:
        bus = ModbusBus(id="line", transport="rtu", serial_port=args["serial_port"], baudrate=115200)
    pollers = build(ModbusCollector(buses=[bus], devices=[ModbusDevice(id=f"cnc-{i}", bus="line", unit_id=i + 1)
                                                          for i in range(n)]))
polls = errors = 0

async def loop(p):
    global polls, errors
    nxt = time.monotonic()
    while True:
        try:
            if await p.read():
                polls += 1
        except Exception:
            errors += 1
        nxt += poll_s
        now = time.monotonic()
        if nxt < now:
            nxt = now
        await asyncio.sleep(nxt - now)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

async def main():
    tasks = [asyncio.create_task(loop(p)) for p in pollers]
    await asyncio.sleep(args["warmup_s"])
    cpu0, polls0, err0 = time.process_time(), polls, errors
    await asyncio.sleep(args["seconds"])
    cpu1, polls1, err1 = time.process_time(), polls, errors
    print(json.dumps({"cpu_s": cpu1 - cpu0, "polls": polls1 - polls0, "errors": err1 - err0,
                      "rss_mb": status("VmRSS"), "peak_mb": status("VmHWM"),
                      "pymodbus": "pymodbus" in sys.modules}))
    for t in tasks:
        t.cancel()
    for p in pollers:
        await p.aclose()

asyncio.run(main())
"""
"""The polling process: the agent's modules and pollers, measuring its own CPU and memory."""

CLIENTS = ["hand-written TCP", "pymodbus TCP", "agent TCP", "pymodbus RTU over TCP", "pymodbus RTU serial"]


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def install_kb(dist_name: str) -> float:
    """On-disk size of an installed distribution: its package directories and its .dist-info."""
    dist = importlib.metadata.distribution(dist_name)
    roots: set[Path] = set()
    for f in dist.files or []:
        if f.parts[0] == ".." or len(f.parts) == 1:  # a script in bin/, a top-level module
            roots.add(Path(str(dist.locate_file(f))))
        else:  # a package directory or the .dist-info, counted whole (with __pycache__)
            roots.add(Path(str(dist.locate_file(f.parts[0]))))
    total = 0
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in paths)
    return total / 1024


async def run_client(client: str, args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    payload = {
        "client": client,
        "devices": args.devices,
        "poll_s": args.poll_s,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "bench_dir": str(ROOT / "bench"),
        **extra,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HARNESS, json.dumps(payload), stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=20, help="simulated machines (default: %(default)s)")
    ap.add_argument(
        "--poll-s", type=float, default=0.1, help="poll interval per device (default: %(default)s)"
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window (default: %(default)s)")
    ap.add_argument(
        "--warmup", type=float, default=3.0, help="warm-up before the window (default: %(default)s)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per client (default: %(default)s)")
    args = ap.parse_args()
    regs = machine_registers(
        state=2,
        spindle_temp_c=61.5,
        motor_temp_c=40.0,
        vibration_mm_s=2.0,
        spindle_load_pct=50.0,
        parts_total=1234,
        rejects_total=5,
    )
    machines = [ModbusDevice(name=f"cnc-{i}", count=14, registers=lambda: regs) for i in range(args.devices)]
    for m in machines:
        await m.start()
    units = [RtuUnit(unit_id=i + 1, count=14, registers=lambda: regs) for i in range(args.devices)]
    rtu_tcp = ModbusRtuLine(name="bench-tcp", units=units)
    rtu_serial = ModbusRtuLine(name="bench-serial", units=units)
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CLIENTS}
    loads: dict[str, list[str]] = {c: [] for c in CLIENTS}
    with tempfile.TemporaryDirectory() as d:
        async with pty_pair(Path(d)) as pty:
            await rtu_serial.start_serial(pty.device_end, baudrate=115200)
            extra = {
                "ports": [m.port for m in machines],
                "rtu_port": await rtu_tcp.start_tcp(),
                "serial_port": pty.agent_end,
            }
            try:
                for _ in range(args.repeat):
                    for client in CLIENTS:
                        before = load()
                        results[client].append(await run_client(client, args, extra))
                        loads[client].append(f"{before}->{load()}")
            finally:
                await rtu_tcp.aclose()
                await rtu_serial.aclose()
                for m in machines:
                    await m.aclose()

    rate = args.devices / args.poll_s
    print(
        f"Modbus polling on the gateway: {args.devices} machines every {args.poll_s} s ({rate:.0f} polls/s "
        f"offered), {args.repeat} runs of {args.seconds:.0f} s per client, in a process holding the agent's modules"
    )
    print(
        f"{'client':<24}{'CPU µs/poll (min-max)':>26}{'polls/s':>9}{'errors':>8}{'RSS MB':>8}{'peak':>7}"
        "  pymodbus loaded   load before->after"
    )
    per_poll: dict[str, float] = {}
    rss: dict[str, float] = {}
    for client in CLIENTS:
        rs = results[client]
        us = [1e6 * r["cpu_s"] / max(r["polls"], 1) for r in rs]
        per_poll[client] = statistics.median(us)
        rss[client] = statistics.median(r["rss_mb"] for r in rs)
        print(
            f"{client:<24}{per_poll[client]:>12.0f} ({min(us):.0f}-{max(us):.0f})"
            f"{statistics.median(r['polls'] for r in rs) / args.seconds:>11.0f}"
            f"{sum(r['errors'] for r in rs):>8}{rss[client]:>8.1f}{max(r['peak_mb'] for r in rs):>7.1f}"
            f"  {'yes' if all(r['pymodbus'] for r in rs) else 'no':>15}   {' '.join(loads[client])}"
        )
    hand, pym = "hand-written TCP", "pymodbus TCP"
    print(
        f"pymodbus TCP / hand-written: CPU per poll x{per_poll[pym] / per_poll[hand]:.2f}, "
        f"RSS +{rss[pym] - rss[hand]:.1f} MB; at {rate:.0f} polls/s that is "
        f"{rate * per_poll[hand] / 1e4:.1f} % vs {rate * per_poll[pym] / 1e4:.1f} % of one core"
    )
    sizes = {name: install_kb(name) for name in ("pymodbus", "pyserial")}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        sizes["paho-mqtt"] = install_kb("paho-mqtt")
        sizes["msgspec"] = install_kb("msgspec")
    print(
        "installed size (site-packages, with __pycache__): "
        + ", ".join(f"{k} {v / 1024:.2f} MB" for k, v in sizes.items())
        + f"; pymodbus + pyserial {(sizes['pymodbus'] + sizes['pyserial']) / 1024:.2f} MB vs none for the"
        " hand-written client"
    )


if __name__ == "__main__":
    asyncio.run(main())
