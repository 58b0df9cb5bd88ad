"""``parkwatch sim run``: start the devices, print the endpoints, wait for Ctrl-C or a duration."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from firmware_sim.endpoints import SimEndpoints
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario


def format_endpoints(ep: SimEndpoints) -> str:
    """A plain-text table of every device, grouped by gateway."""
    lines = [f"scenario {ep.scenario}  seed {ep.seed}  speed x{ep.speed:g}  start_ms {ep.start_ms}"]
    for gw_id, gw in ep.gateways.items():
        kind = "mobile probe" if gw.mobile else "gateway"
        lines.append(f"\n{gw_id}  ({kind}, park {gw.park}, {gw.lat:.5f},{gw.lon:.5f})")
        for d in gw.devices:
            addr = f"{d.host}:{d.port}" + (f"  [{d.host6}]:{d.port}" if d.host6 else "")
            extra = ""
            if d.kind in ("machine", "energy", "environment"):
                extra = f"modbus unit {d.unit}, {d.registers} holding registers" + (
                    f", line {d.line}" if d.line else ""
                )
            elif d.kind == "modem":
                extra = f"AT/TCP, {d.operator_name} ({d.operator}), tech {d.tech}" + (
                    ", GNSS" if d.gnss else ""
                )
            elif d.kind == "probe_target":
                extra = f"HTTP, profile {d.profile}"
            elif d.kind == "opcua_server":
                devs = sorted({n.device for n in d.nodes or []})
                extra = f"OPC UA {d.url}, {len(d.nodes or [])} nodes of {', '.join(devs)}"
            lines.append(f"  {d.id:<16} {d.kind:<12} {addr:<34} {extra}")
    return "\n".join(lines)


async def run_simulator(
    scenario: Scenario,
    *,
    gateways: list[str] | None,
    endpoints_out: str | None,
    as_json: bool,
    ipv6: bool,
    duration_s: float | None,
) -> int:
    """Run until cancelled (Ctrl-C) or ``duration_s``; return the exit code."""
    async with Simulator(scenario, gateways=gateways, ipv6=ipv6) as sim:
        ep = sim.endpoints
        if gateways and set(gateways) - set(ep.gateways):
            unknown = sorted(set(gateways) - set(ep.gateways))
            print(f"parkwatch sim run: unknown gateway id(s) {unknown}", file=sys.stderr)
            return 2
        if endpoints_out:
            await asyncio.to_thread(Path(endpoints_out).write_bytes, ep.to_json() + b"\n")
        print(ep.to_json().decode() if as_json else format_endpoints(ep), flush=True)
        if endpoints_out:
            print(f"endpoints written to {endpoints_out}", file=sys.stderr)
        print(
            "Press Ctrl-C to stop." if duration_s is None else f"Stopping after {duration_s:g} s.",
            file=sys.stderr,
            flush=True,
        )
        if duration_s is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration_s)
    return 0
