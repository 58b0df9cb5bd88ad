"""The simulator's Modbus devices on an RTU line: a socat pty pair and RTU over TCP, read by the agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.readings import Energy, Environment, Machine, Reading
from edge_agent.collectors import build_collectors
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario
from settings.edge import ModbusBus, ModbusCollector, ModbusDevice
from tests.edge_agent.devices import pty_pair

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

GATEWAY = "dv-gw-01"


async def read(cfg: ModbusCollector) -> list[Reading]:
    out: list[Reading] = []
    for poller in build_collectors([cfg]):
        try:
            out.extend(await poller.read())
        finally:
            await poller.aclose()
    return out


def counters(readings: list[Reading]) -> dict[str, float]:
    """The values that only grow: parts of machines, energy of meters."""
    out: dict[str, float] = {}
    for r in readings:
        if isinstance(r, Machine) and r.parts_total is not None:
            out[r.dev] = r.parts_total
        elif isinstance(r, Energy) and r.energy_kwh is not None:
            out[r.dev] = r.energy_kwh
    return out


async def test_the_same_devices_over_tcp_serial_rtu_and_rtu_over_tcp(
    scenario: Scenario, tmp_path: Path
) -> None:
    async with Simulator(scenario, gateways=[GATEWAY], ipv6=False) as sim:
        modbus = [d for d in sim.endpoints.gateways[GATEWAY].devices if d.unit is not None]
        assert len(modbus) >= 3
        tcp = ModbusCollector(
            devices=[
                ModbusDevice(id=d.id, host=d.host, port=d.port, kind=d.kind, profile=d.kind)  # type: ignore[arg-type]
                for d in modbus
            ]
        )

        def on(bus: ModbusBus) -> ModbusCollector:
            return ModbusCollector(
                buses=[bus],
                devices=[
                    ModbusDevice(id=d.id, bus=bus.id, unit_id=i, kind=d.kind, profile=d.kind)  # type: ignore[arg-type]
                    for i, d in enumerate(modbus, start=1)
                ],
            )

        over_tcp = await read(tcp)
        line = sim.rtu_line(GATEWAY)
        async with pty_pair(tmp_path) as pty:
            await line.start_serial(pty.device_end, baudrate=38400)
            try:
                serial = await read(
                    on(ModbusBus(id="rs485", transport="rtu", serial_port=pty.agent_end, baudrate=38400))
                )
            finally:
                await line.aclose()
        gateway_line = sim.rtu_line(GATEWAY)
        port = await gateway_line.start_tcp()
        try:
            rtu_tcp = await read(
                on(ModbusBus(id="nport", transport="rtu_over_tcp", host="127.0.0.1", port=port))
            )
        finally:
            await gateway_line.aclose()
    for readings in (over_tcp, serial, rtu_tcp):
        assert [(r.dev, type(r).__name__) for r in readings] == [
            (d.id, {"machine": "Machine", "energy": "Energy", "environment": "Environment"}[d.kind])
            for d in modbus
        ]
        assert all(r.state is not None for r in readings if isinstance(r, Machine))
        assert all(r.temp_c is not None for r in readings if isinstance(r, Environment))
    # Same registers, read a moment later: counters equal or a little further on, never behind.
    first, second, third = counters(over_tcp), counters(serial), counters(rtu_tcp)
    assert first and first.keys() == second.keys() == third.keys()
    for dev, value in first.items():
        assert value <= second[dev] <= third[dev] <= value * 1.01 + 5, dev
    assert [r.unit_id for r in line.requests] == list(range(1, len(modbus) + 1))
