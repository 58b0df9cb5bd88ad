"""Modbus RTU on a serial line (a socat pty pair) and RTU over TCP, against real pymodbus servers.

The devices are the simulator's RTU line (``firmware_sim.devices.modbus.ModbusRtuLine``), whose
request log says when each request began and when its answer was ready.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from contract.readings import Energy, Machine, Reading
from edge_agent.collectors import build_collectors
from edge_agent.collectors.modbus import ModbusPoller
from edge_agent.collectors.modbus_bus import Bus
from edge_agent.errors import DeviceError
from firmware_sim.devices.modbus import LineRequest, ModbusRtuLine, RtuUnit
from parkwatch.cli import main
from settings.edge import ModbusBus, ModbusCollector, ModbusDevice
from tests.edge_agent.devices import energy_registers, free_port, machine_registers, pty_pair

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MACHINE = machine_registers(
    state=2,
    spindle_temp_c=61.5,
    motor_temp_c=40.2,
    vibration_mm_s=2.31,
    spindle_load_pct=55.5,
    parts_total=70_001,
    rejects_total=12,
)
METER = energy_registers(
    power_kw=42.5, voltage_v=400.0, current_a=61.25, power_factor=0.93, energy_wh=1_234_567
)


def line(*, answer_delay_s: float = 0.0) -> ModbusRtuLine:
    """A machine at unit 1 and an energy meter at unit 2 on one line."""
    units = [
        RtuUnit(unit_id=1, count=14, registers=lambda: MACHINE),
        RtuUnit(unit_id=2, count=12, registers=lambda: METER),
    ]
    return ModbusRtuLine(name="test-line", units=units, answer_delay_s=answer_delay_s)


def devices(bus: str, **timeouts_s: float) -> list[ModbusDevice]:
    return [
        ModbusDevice(id="cnc-1", bus=bus, unit_id=1, timeout_s=timeouts_s.get("cnc_1", 2.0)),
        ModbusDevice(
            id="meter-1",
            bus=bus,
            unit_id=2,
            kind="energy",
            profile="energy",
            timeout_s=timeouts_s.get("meter_1", 2.0),
        ),
    ]


def check_values(readings: list[Reading]) -> None:
    machine, meter = readings
    assert isinstance(machine, Machine) and isinstance(meter, Energy)
    assert (machine.dev, machine.state, machine.spindle_temp_c, machine.parts_total) == (
        "cnc-1",
        "running",
        61.5,
        70_001,
    )
    assert (machine.vibration_mm_s, machine.rejects_total) == (2.31, 12)
    assert (meter.dev, meter.power_kw, meter.voltage_v, meter.power_factor) == ("meter-1", 42.5, 400.0, 0.93)
    assert meter.energy_kwh == 1234.567


def overlaps(log: list[LineRequest]) -> list[tuple[LineRequest, LineRequest]]:
    """Pairs of requests the line was handling at the same time."""
    ordered = sorted(log, key=lambda r: r.start_s)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b.start_s < a.end_s]


async def read_all(pollers: list[ModbusPoller]) -> list[Reading]:
    out: list[Reading] = []
    for p in pollers:
        out.extend(await p.read())
    return out


async def test_rtu_devices_on_a_serial_line(tmp_path: Path) -> None:
    async with pty_pair(tmp_path) as pty:
        device_line = line()
        await device_line.start_serial(pty.device_end, baudrate=19200)
        cfg = ModbusCollector(
            buses=[ModbusBus(id="rs485-a", transport="rtu", serial_port=pty.agent_end, baudrate=19200)],
            devices=devices("rs485-a"),
        )
        pollers = build_collectors([cfg])
        try:
            assert isinstance(pollers[0], ModbusPoller) and isinstance(pollers[1], ModbusPoller)
            assert pollers[0].bus is pollers[1].bus  # one port, one bus
            check_values(await read_all(pollers))  # type: ignore[arg-type]
            check_values(await read_all(pollers))  # type: ignore[arg-type]
        finally:
            for p in pollers:
                await p.aclose()
            await device_line.aclose()
        assert [r.unit_id for r in device_line.requests] == [1, 2, 1, 2]


async def test_rtu_over_tcp_serial_gateway() -> None:
    device_line = line()
    port = await device_line.start_tcp()
    cfg = ModbusCollector(
        buses=[ModbusBus(id="gw-hall-b", transport="rtu_over_tcp", host="127.0.0.1", port=port)],
        devices=devices("gw-hall-b"),
    )
    pollers = build_collectors([cfg])
    try:
        check_values(await read_all(pollers))  # type: ignore[arg-type]
    finally:
        for p in pollers:
            await p.aclose()
        await device_line.aclose()
    assert sorted(r.unit_id for r in device_line.requests) == [1, 2]


async def test_devices_on_one_bus_never_overlap(tmp_path: Path) -> None:
    """Both devices polled at once, over and over: the line sees one request at a time, with the gap."""
    async with pty_pair(tmp_path) as pty:
        device_line = line(answer_delay_s=0.02)
        await device_line.start_serial(pty.device_end)
        cfg = ModbusCollector(
            buses=[ModbusBus(id="rs485-a", transport="rtu", serial_port=pty.agent_end, gap_ms=15.0)],
            devices=devices("rs485-a"),
        )
        pollers = build_collectors([cfg])
        try:
            for _ in range(5):
                rounds = await asyncio.gather(*(p.read() for p in pollers))
                check_values([r for rs in rounds for r in rs])
        finally:
            for p in pollers:
                await p.aclose()
            await device_line.aclose()
    log = sorted(device_line.requests, key=lambda r: r.start_s)
    assert len(log) == 10 and {r.unit_id for r in log} == {1, 2}
    assert overlaps(log) == []
    # Silence between an answer and the next request: gap_ms, plus the 3.5 characters of RTU.
    assert min(b.start_s - a.end_s for a, b in itertools.pairwise(log)) >= 0.015


async def test_the_request_log_does_see_overlap_when_nothing_paces_the_line() -> None:
    """The control of the test above: two connections to one line, no shared bus, do overlap."""
    device_line = line(answer_delay_s=0.5)
    port = await device_line.start_tcp()
    settings = ModbusBus(id="x", transport="rtu_over_tcp", host="127.0.0.1", port=port)
    unpaced = [Bus(settings, timeout_s=2.0), Bus(settings, timeout_s=2.0)]
    try:
        await asyncio.gather(
            unpaced[0].read_holding_bytes(0, 14, unit=1, timeout_s=2.0),
            unpaced[1].read_holding_bytes(0, 12, unit=2, timeout_s=2.0),
        )
    finally:
        for b in unpaced:
            await b.release()
        await device_line.aclose()
    assert len(overlaps(device_line.requests)) == 1


async def test_each_device_has_its_own_timeout() -> None:
    """A slow line: the device with a short timeout fails fast, its neighbour still gets answers."""
    device_line = line(answer_delay_s=1.0)
    port = await device_line.start_tcp()
    cfg = ModbusCollector(
        buses=[ModbusBus(id="slow", transport="rtu_over_tcp", host="127.0.0.1", port=port)],
        devices=[
            *devices("slow", cnc_1=3.0, meter_1=0.1),
            ModbusDevice(id="absent", bus="slow", unit_id=9, timeout_s=0.2),
        ],
    )
    cnc, meter, absent = build_collectors([cfg])
    try:
        t0 = time.monotonic()
        with pytest.raises(
            DeviceError, match=r"meter-1: no answer from unit 2 at 127\.0\.0\.1:\d+ within 0\.1 s"
        ):
            await meter.read()
        assert time.monotonic() - t0 < 0.9  # cut at its own 0.1 s, not at the 1 s answer or 3 s
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"absent: no answer from unit 9 .* within 0\.2 s"):
            await absent.read()
        assert 0.19 <= time.monotonic() - t0 < 0.9
        [machine] = await cnc.read()  # the late answer to unit 2 is not taken for this one
        assert isinstance(machine, Machine) and machine.parts_total == 70_001
    finally:
        for p in (cnc, meter, absent):
            await p.aclose()
        await device_line.aclose()


async def test_serial_settings_the_port_refuses_are_named_and_leave_the_port_free(tmp_path: Path) -> None:
    """A pty has no parity bit: the error names the settings, and the port can be opened right after."""
    async with pty_pair(tmp_path) as pty:
        device_line = line()
        await device_line.start_serial(pty.device_end)
        [wrong] = build_collectors(
            [
                ModbusCollector(
                    buses=[ModbusBus(id="rs485-a", transport="rtu", serial_port=pty.agent_end, parity="E")],
                    devices=devices("rs485-a")[:1],
                )
            ]
        )
        with pytest.raises(DeviceError) as info:
            await wrong.read()
        assert str(info.value).startswith(
            f"cnc-1: serial port {pty.agent_end} refuses 9600 bit/s 8E1 (bus rs485-a)"
        )
        assert "parity" in info.value.fix
        await wrong.aclose()
        [right] = build_collectors(
            [
                ModbusCollector(
                    buses=[ModbusBus(id="rs485-a", transport="rtu", serial_port=pty.agent_end)],
                    devices=devices("rs485-a")[:1],
                )
            ]
        )
        try:
            [machine] = await right.read()
            assert isinstance(machine, Machine) and machine.parts_total == 70_001
        finally:
            await right.aclose()
            await device_line.aclose()


def test_doctor_names_a_missing_serial_port_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ttyUSB7"
    config = tmp_path / "edge.toml"
    config.write_text(
        '[agent]\npark = "p"\ngateway = "g"\n'
        f"[broker]\nport = {free_port()}\n"
        '[[collectors]]\ntype = "modbus"\n'
        f'[[collectors.buses]]\nid = "rs485-a"\ntransport = "rtu"\nserial_port = "{missing}"\n'
        '[[collectors.devices]]\nid = "meter-7"\nbus = "rs485-a"\nunit_id = 7\n'
    )
    assert main(["edge", "doctor", "--config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("device meter-7"))
    assert "FAIL" in lines[i] and lines[i].endswith(
        f"meter-7: serial port {missing} does not exist (bus rs485-a)"
    )
    fix = lines[i + 1].strip()
    assert fix.startswith("fix: plug in the RS-485 adapter") and "ls -l /dev/serial/by-id/" in fix
    assert "serial_port of [[collectors.buses]] id = 'rs485-a'" in fix
