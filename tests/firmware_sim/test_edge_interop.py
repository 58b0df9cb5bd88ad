"""The agreed device interface, end to end: the edge agent's own collectors read the simulator."""

from __future__ import annotations

from contract.readings import Broadband, Cellular, Energy, Environment, Machine
from edge_agent.collectors.broadband import BroadbandProbe
from edge_agent.collectors.cellular import ModemReader
from edge_agent.collectors.modbus import ModbusPoller
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario
from settings.edge import BroadbandCollector, ModbusDevice, Modem, ProbeTarget


async def test_edge_collectors_read_every_kind_of_simulated_device(scenario: Scenario) -> None:
    async with Simulator(scenario, gateways=["dv-gw-01", "dv-probe-01"]) as sim:
        ep = sim.endpoints
        got: dict[str, list[object]] = {}
        for _, d in ep.devices():
            if d.kind in ("machine", "energy", "environment"):
                poller = ModbusPoller(
                    ModbusDevice(id=d.id, host=d.host, port=d.port, kind=d.kind, profile=d.kind)
                )
                got.setdefault(d.kind, []).extend(await poller.read())
            elif d.kind == "modem":
                reader = ModemReader(Modem(id=d.id, address=f"tcp://{d.host}:{d.port}", gnss=bool(d.gnss)))
                got.setdefault(d.kind, []).extend(await reader.read())
            elif d.kind == "probe_target":
                probe = BroadbandProbe(
                    BroadbandCollector(
                        targets=[
                            ProbeTarget(
                                name=d.id,
                                host=d.host,
                                ipv6_host=d.host6 or "",
                                port=d.port,
                                download_bytes=100_000,
                            )
                        ]
                    )
                )
                got.setdefault(d.kind, []).extend(await probe.read())
    machines = [r for r in got["machine"] if isinstance(r, Machine)]
    assert len(machines) == 3 and all(m.state is not None and m.parts_total for m in machines)
    assert all(isinstance(r, Energy) and r.energy_kwh for r in got["energy"])
    assert all(isinstance(r, Environment) and r.temp_c is not None for r in got["environment"])
    cells = [r for r in got["modem"] if isinstance(r, Cellular)]
    assert {c.operator for c in cells} == {"Lotus Mobile", "Red River Telecom", "Bach Dang Wireless"}
    assert any(c.tech == "NR" for c in cells) and any(c.tech == "LTE" for c in cells)
    mobile = [c for c in cells if c.dev.endswith("-lte")]
    assert mobile and all(c.lat is not None for c in mobile)
    bb = got["probe_target"]
    assert len(bb) == 1 and isinstance(bb[0], Broadband) and bb[0].ipv4_ok and bb[0].ipv6_ok
