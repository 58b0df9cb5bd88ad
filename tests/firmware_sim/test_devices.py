"""Devices on loopback, read through real clients: pymodbus, raw TCP AT sessions, HTTP over IPv4/IPv6."""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import AsyncIterator

import msgspec
import pytest
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.clock import SimClock
from firmware_sim.endpoints import SimEndpoints
from firmware_sim.models.machine import STATE_CODES
from firmware_sim.runner import Simulator
from firmware_sim.scenario import ProbeProfile, Scenario
from firmware_sim.world import World

SIM_T_S = 1800.0  # half an hour into the simulation
START_MS = 1_790_000_000_000


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim(scenario: Scenario) -> AsyncIterator[Simulator]:
    mono = FakeMonotonic()
    clock = SimClock(start_ms=START_MS, speed=1.0, monotonic=mono)
    mono.now = SIM_T_S
    async with Simulator(scenario, clock=clock, gateways=["dv-gw-01", "dv-probe-01", "ndv-gw-01"]) as s:
        yield s


def _device(ep: SimEndpoints, gw: str, dev: str):  # type: ignore[no-untyped-def]
    return next(d for d in ep.gateways[gw].devices if d.id == dev)


async def _read(port: int, count: int) -> list[int]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        rr = await client.read_holding_registers(0, count=count, device_id=1)
        assert not rr.isError(), rr
        return list(rr.registers)
    finally:
        client.close()


def _u32(hi: int, lo: int) -> int:
    return (hi << 16) | lo


def _f32(hi: int, lo: int) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", hi, lo))[0])


async def test_modbus_registers_decode_to_documented_values(sim: Simulator, scenario: Scenario) -> None:
    ep = sim.endpoints
    expected = World(scenario, start_ms=START_MS)
    expected.advance_to(SIM_T_S)
    gw = expected.gateways["dv-gw-01"]

    m = gw.machines["cnc-01"]
    regs = await _read(_device(ep, "dv-gw-01", "cnc-01").port, 14)
    # cnc-01 has a scheduled fault at 0.5 h lasting 20 min: at 1800 s it has just started.
    assert regs[0] == STATE_CODES["fault"] == 3
    assert struct.unpack(">h", struct.pack(">H", regs[1]))[0] / 10 == pytest.approx(
        m.spindle_temp_c, abs=0.05
    )
    assert struct.unpack(">h", struct.pack(">H", regs[2]))[0] / 10 == pytest.approx(m.motor_temp_c, abs=0.05)
    assert regs[3] / 100 == pytest.approx(m.vibration_mm_s, abs=0.005)
    assert regs[4] / 10 == pytest.approx(m.spindle_load_pct, abs=0.05)
    assert _u32(regs[10], regs[11]) == m.parts_total > 65535
    assert _u32(regs[12], regs[13]) == m.rejects_total

    e = gw.meters["meter-main"]
    regs = await _read(_device(ep, "dv-gw-01", "meter-main").port, 12)
    assert _f32(regs[0], regs[1]) == pytest.approx(e.power_kw, rel=1e-6)
    assert _f32(regs[2], regs[3]) == pytest.approx(e.voltage_v, rel=1e-6)
    assert _f32(regs[4], regs[5]) == pytest.approx(e.current_a, rel=1e-6)
    assert _f32(regs[6], regs[7]) == pytest.approx(e.power_factor, rel=1e-6)
    energy_wh = (regs[8] << 48) | (regs[9] << 32) | (regs[10] << 16) | regs[11]
    assert energy_wh == int(e.energy_wh) > 2**32  # uses the high words
    assert 300 < e.voltage_v < 500 and 0.5 < e.power_factor <= 1.0

    s = gw.environment["env-hall"]
    regs = await _read(_device(ep, "dv-gw-01", "env-hall").port, 5)
    assert struct.unpack(">h", struct.pack(">H", regs[0]))[0] / 10 == pytest.approx(s.temp_c, abs=0.05)
    assert regs[1] / 10 == pytest.approx(s.humidity_pct, abs=0.05)
    assert regs[2] / 10 == pytest.approx(s.pm25_ug_m3, abs=0.05)
    assert regs[3] / 10 == pytest.approx(s.noise_dba, abs=0.05)
    assert regs[4] == round(s.co2_ppm)


async def test_modbus_is_read_only(sim: Simulator) -> None:
    port = _device(sim.endpoints, "dv-gw-01", "cnc-02").port
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        rr = await client.write_register(0, 3, device_id=1)
        assert rr.isError()
        beyond = await client.read_holding_registers(10, count=10, device_id=1)
        assert beyond.isError()
    finally:
        client.close()


async def _at(port: int, *commands: str, terminator: bytes = b"\r") -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out: list[str] = []
    try:
        for cmd in commands:
            writer.write(cmd.encode() + terminator)
            await writer.drain()
            buf = b""
            while not re.search(rb"\r\n(OK|ERROR|\+CME ERROR: \d+)\r\n$", buf):
                chunk = await asyncio.wait_for(reader.read(4096), 5)
                assert chunk, "modem closed the connection"
                buf += chunk
            out.append(buf.decode())
    finally:
        writer.close()
    return out


def _info(resp: str) -> list[str]:
    return [ln for ln in resp.split("\r\n") if ln and ln not in ("OK", "ERROR")]


async def test_at_commands_over_tcp_parse(sim: Simulator) -> None:
    ep = sim.endpoints
    lte = _device(ep, "dv-probe-01", "lotus-lte")
    nr = _device(ep, "dv-probe-01", "lotus-nr")
    csq, cesq, cops, qeng, gps, bad = await _at(
        lte.port, "AT+CSQ", "AT+CESQ", "AT+COPS?", 'AT+QENG="servingcell"', "AT+QGPSLOC=2", "AT+NOPE"
    )
    m = re.fullmatch(r"\+CSQ: (\d+),99", _info(csq)[0])
    assert m and 0 <= int(m.group(1)) <= 31
    f = [int(v) for v in _info(cesq)[0].removeprefix("+CESQ: ").split(",")]
    assert f[:4] == [99, 99, 255, 255] and len(f) == 6
    rsrq_db = -20.0 + f[4] * 0.5  # code n: -20 + n/2 <= RSRQ < -19.5 + n/2
    rsrp_dbm = -141.0 + f[5]  # code n: -141 + n <= RSRP < -140 + n
    assert _info(cops)[0] == '+COPS: 0,0,"Lotus Mobile",7'
    q = _info(qeng)[0].removeprefix("+QENG: ").split(",")
    assert q[:4] == ['"servingcell"', '"NOCONN"', '"LTE"', '"FDD"']
    assert (int(q[4]), int(q[5])) == (452, 90)
    int(q[6], 16)
    assert int(q[13]) == pytest.approx(rsrp_dbm, abs=1.5)
    assert int(q[14]) == pytest.approx(rsrq_db, abs=1.5)
    assert len(q) == 20
    g = _info(gps)[0].removeprefix("+QGPSLOC: ").split(",")
    assert len(g) == 11 and re.fullmatch(r"\d{6}\.\d{3}", g[0])
    lat, lon = float(g[1]), float(g[2])
    assert (lat, lon) == pytest.approx(sim.world.gateways["dv-probe-01"].position(SIM_T_S)[:2], abs=1e-5)
    assert g[5] in ("2", "3") and re.fullmatch(r"\d{6}", g[9])
    assert bad.endswith("\r\nERROR\r\n")

    nr_cesq, nr_cops, nr_qeng = await _at(nr.port, "AT+CESQ", "AT+COPS?", 'AT+QENG="servingcell"')
    f = [int(v) for v in _info(nr_cesq)[0].removeprefix("+CESQ: ").split(",")]
    assert len(f) == 9 and f[:6] == [99, 99, 255, 255, 255, 255]
    ss_rsrp = -157.0 + f[7]
    assert _info(nr_cops)[0].endswith(",11")
    q = _info(nr_qeng)[0].removeprefix("+QENG: ").split(",")
    assert q[2:4] == ['"NR5G-SA"', '"TDD"'] and len(q) == 17
    assert int(q[12]) == pytest.approx(ss_rsrp, abs=1.5)
    assert int(q[10]) == 78


async def test_at_framing_echo_and_no_fix(sim: Simulator) -> None:
    fixed = _device(sim.endpoints, "dv-gw-01", "modem-1")
    assert fixed.gnss is False
    ok, _echo_on, echoed, ati, gps = await _at(
        fixed.port, "AT", "ATE1", "AT+CSQ", "ATI", "AT+QGPSLOC=2", terminator=b"\r\n"
    )
    assert ok == "\r\nOK\r\n"
    assert echoed.startswith("AT+CSQ\r")
    assert _info(ati)[1:3] == ["Quectel", "RM500Q-GL"]
    assert gps.endswith("\r\n+CME ERROR: 516\r\n")


async def test_no_service_modem_reports_search(sim: Simulator) -> None:
    # ndv-gw-01 sits inside the steel works (25 dB) at the edge of Bach Dang Wireless' coverage.
    modem = _device(sim.endpoints, "ndv-gw-01", "modem-1")
    csq, qeng, cops = await _at(modem.port, "AT+CSQ", 'AT+QENG="servingcell"', "AT+COPS?")
    assert _info(csq)[0] == "+CSQ: 99,99"
    assert _info(qeng)[0] == '+QENG: "servingcell","SEARCH"'
    assert _info(cops)[0] == "+COPS: 0"


async def _http(host: str, port: int, request: bytes) -> tuple[bytes, bytes, float]:
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        return head, body, time.monotonic() - t0
    finally:
        writer.close()


async def test_probe_target_ipv4_and_ipv6_with_shaped_latency(scenario: Scenario) -> None:
    profile = ProbeProfile(
        name="slow", latency_ms=80.0, jitter_ms=0.0, loss_pct=0.0, down_mbps=8.0, up_mbps=4.0
    )
    s = msgspec.structs.replace(scenario, probe_profiles=[profile])
    s = msgspec.structs.replace(
        s,
        parks=[
            msgspec.structs.replace(
                s.parks[0], gateways=[msgspec.structs.replace(s.parks[0].gateways[0], probe_targets=["slow"])]
            )
        ],
    )
    async with Simulator(s, gateways=["dv-gw-01"]) as sim:
        target = _device(sim.endpoints, "dv-gw-01", "bb-slow")
        for host in ("127.0.0.1", "::1"):
            head, _, elapsed = await _http(host, target.port, b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 204")
            assert 0.075 <= elapsed < 1.0
        head, body, elapsed = await _http(
            "::1", target.port, b"GET /download?bytes=200000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        assert head.startswith(b"HTTP/1.1 200") and len(body) == 200_000
        assert elapsed >= 0.08 + 200_000 * 8 / 8e6 * 0.8  # latency plus pacing at 8 Mbit/s
        head, _, elapsed = await _http(
            "127.0.0.1",
            target.port,
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000,
        )
        assert head.startswith(b"HTTP/1.1 204")
        assert elapsed >= 100_000 * 8 / 4e6 * 0.8
        head, _, _ = await _http("127.0.0.1", target.port, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")


async def test_probe_target_drops_a_share_of_connections(scenario: Scenario) -> None:
    profile = ProbeProfile(name="lossy", latency_ms=0.0, jitter_ms=0.0, loss_pct=50.0)
    s = msgspec.structs.replace(scenario, probe_profiles=[profile])
    s = msgspec.structs.replace(
        s,
        parks=[
            msgspec.structs.replace(
                s.parks[0],
                gateways=[msgspec.structs.replace(s.parks[0].gateways[0], probe_targets=["lossy"])],
            )
        ],
    )
    async with Simulator(s, gateways=["dv-gw-01"], ipv6=False) as sim:
        port = _device(sim.endpoints, "dv-gw-01", "bb-lossy").port
        ok = 0
        for _ in range(40):
            try:
                head, _, _ = await _http("127.0.0.1", port, b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
                ok += head.startswith(b"HTTP/1.1 204")
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
        assert 8 <= ok <= 32


def test_endpoints_json_round_trip(scenario: Scenario) -> None:
    async def go() -> SimEndpoints:
        async with Simulator(scenario, gateways=["dv-probe-01"]) as sim:
            return sim.endpoints

    ep = asyncio.run(go())
    again = SimEndpoints.from_json(ep.to_json())
    assert again == ep
    assert {d.kind for _, d in ep.devices()} == {"modem"}
    assert all(d.gnss for _, d in ep.devices("modem"))
    assert ep.gateways["dv-probe-01"].mobile
