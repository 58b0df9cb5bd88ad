"""Collectors on their real I/O paths: a modem on a serial line (pty), probe targets, the scan tools."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path

import pytest

from contract.readings import Broadband, Cellular, System, Wifi
from edge_agent.collectors import build_collectors
from edge_agent.collectors.broadband import BroadbandProbe, summarize_pings
from edge_agent.collectors.cellular import ModemReader
from edge_agent.collectors.system import (
    SystemMonitor,
    parse_chrony_tracking,
    parse_meminfo,
    parse_proc_stat,
    parse_timesync_status,
)
from edge_agent.collectors.wifi import WifiScanner
from edge_agent.errors import DeviceError
from settings.edge import (
    BroadbandCollector,
    ModbusCollector,
    Modem,
    ProbeTarget,
    SystemCollector,
    WifiCollector,
)
from tests.edge_agent.devices import ATModem, ModemState
from tests.edge_agent.devices import ProbeTarget as ProbeServer

SAMPLES = Path(__file__).parent / "samples"


def serve_pty(master: int, modem: ATModem, stop: threading.Event) -> None:
    """Answer AT commands on the master side of a pty, like a modem's USB serial port."""
    buf = b""
    while not stop.is_set():
        try:
            data = os.read(master, 1024)
        except OSError:
            return
        buf += data
        while b"\r" in buf:
            raw, _, buf = buf.partition(b"\r")
            cmd = raw.decode().strip()
            if cmd:
                os.write(master, b"".join(b"\r\n" + line.encode() + b"\r\n" for line in modem.answer(cmd)))


async def test_modem_on_a_serial_device() -> None:
    master, slave = os.openpty()
    stop = threading.Event()
    modem = ATModem(
        ModemState(
            act=11,
            qeng='+QENG: "servingcell","NOCONN","NR5G-SA","TDD",452,02,8F3A1B2C5,501,7A2B,627264,78,12,-88,-12,18,1,35',
            gnss=None,
        )
    )
    server = threading.Thread(target=serve_pty, args=(master, modem, stop), daemon=True)
    server.start()
    reader = ModemReader(Modem(id="modem-s", address=os.ttyname(slave), baudrate=115200, timeout_s=2.0))
    try:
        readings = await reader.read()
        assert len(readings) == 1
        r = readings[0]
        assert isinstance(r, Cellular)
        assert (r.operator, r.tech, r.rsrp_dbm, r.sinr_db, r.band, r.lat) == (
            "Viettel",
            "NR",
            -88,
            18,
            "n78",
            None,
        )
        assert modem.state.commands[:2] == ["ATE0", "AT+COPS?"]
    finally:
        await reader.aclose()
        stop.set()
        os.close(slave)
        os.close(master)


async def test_modem_without_qeng_falls_back_to_cesq() -> None:
    modem = ATModem(ModemState(qeng="", gnss=None))
    asked: list[str] = []
    base = modem.answer

    def answer(cmd: str) -> list[str]:
        asked.append(cmd)
        return ["ERROR"] if cmd.startswith("AT+QENG") else base(cmd)

    modem.answer = answer  # type: ignore[method-assign]
    await modem.start()
    reader = ModemReader(Modem(id="m", address=f"tcp://127.0.0.1:{modem.port}", gnss=False))
    try:
        first = await reader.read()
        second = await reader.read()
        for readings in (first, second):
            r = readings[0]
            assert isinstance(r, Cellular) and (r.rsrp_dbm, r.rsrq_db) == (-95.0, -11.0)
        # Not a Quectel modem: asked once, then straight to 27.007 AT+CESQ.
        assert sum(c.startswith("AT+QENG") for c in asked) == 1 and asked.count("AT+CESQ") == 2
    finally:
        await reader.aclose()
        await modem.stop()


async def test_unreachable_modem_is_a_device_error() -> None:
    reader = ModemReader(Modem(id="m", address="tcp://127.0.0.1:1", timeout_s=1.0))
    with pytest.raises(DeviceError, match="cannot connect"):
        await reader.read()
    with pytest.raises(DeviceError, match="cannot open serial device"):
        await ModemReader(Modem(id="m", address="/dev/does-not-exist")).read()


async def test_broadband_probe_measures_loss_throughput_and_both_ip_versions() -> None:
    calls = {"n": 0}

    def drop() -> bool:
        calls["n"] += 1
        return calls["n"] in (2, 4)  # the 2nd and 4th connection are reset

    target = ProbeServer(drop=drop)
    await target.start()
    probe = BroadbandProbe(
        BroadbandCollector(
            targets=[
                ProbeTarget(
                    name="isp-a",
                    host="127.0.0.1",
                    ipv6_host="::1",
                    port=target.port,
                    dns_name="localhost",
                    pings=10,
                    download_bytes=200_000,
                    upload_bytes=100_000,
                )
            ],
            timeout_s=2.0,
        )
    )
    try:
        [r] = await probe.read()
    finally:
        await target.stop()
    assert isinstance(r, Broadband)
    assert r.loss_pct == 20.0 and r.ipv4_ok is True
    assert r.latency_ms is not None and r.jitter_ms is not None and r.dns_ms is not None
    assert r.down_mbps is not None and r.down_mbps > 0 and r.up_mbps is not None and r.up_mbps > 0
    assert r.ipv6_ok in (True, False)  # True where ::1 exists (the target listens there when it can)


async def test_unreachable_target_is_a_measurement_not_an_error() -> None:
    probe = BroadbandProbe(
        BroadbandCollector(
            targets=[ProbeTarget(name="down", host="127.0.0.1", port=1, pings=3)], timeout_s=1.0
        )
    )
    [r] = await probe.read()
    assert isinstance(r, Broadband) and r.loss_pct == 100.0 and r.ipv4_ok is False and r.latency_ms is None


@pytest.mark.parametrize(
    ("rtts", "expected"),
    [
        ([10.0, 12.0, 11.0], (11.0, 1.5, 0.0)),
        ([10.0, None, 14.0, None], (12.0, 4.0, 50.0)),
        ([None, None], (None, None, 100.0)),
        ([5.0], (5.0, 0.0, 0.0)),
    ],
)
def test_summarize_pings(
    rtts: list[float | None], expected: tuple[float | None, float | None, float]
) -> None:
    assert summarize_pings(rtts) == expected


def fake_tool(tmp_path: Path, name: str, sample: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\ncat {SAMPLES / sample}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("tool", "sample", "count"), [("nmcli", "nmcli_wifi.txt", 4), ("iw", "iw_scan.txt", 3)]
)
async def test_wifi_scanner_runs_the_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str, sample: str, count: int
) -> None:
    fake_tool(tmp_path, tool, sample, monkeypatch)
    readings = await WifiScanner(WifiCollector(tool=tool, device="wifi-1")).read()  # type: ignore[arg-type]
    assert len(readings) == count and all(isinstance(r, Wifi) and r.dev == "wifi-1" for r in readings)


async def test_missing_scan_tool_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeviceError, match="cannot run nmcli"):
        await WifiScanner(WifiCollector()).read()


async def test_system_monitor_reports_the_gateway() -> None:
    mon = SystemMonitor(SystemCollector(device="gw"))
    await mon.read()
    await asyncio.sleep(0.05)
    [r] = await mon.read()
    assert isinstance(r, System) and r.dev == "gw"
    assert r.mem_pct is not None and 0 <= r.mem_pct <= 100 and r.disk_pct is not None and r.uptime_s


def test_proc_parsers() -> None:
    assert parse_proc_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n") == (150, 1000)
    assert parse_meminfo("MemTotal:       1000 kB\nMemFree: 100 kB\nMemAvailable:    250 kB\n") == 75.0


def test_registry_builds_one_collector_per_device() -> None:
    from settings.edge import CellularCollector, ModbusCollector, ModbusDevice

    built = build_collectors(
        [
            ModbusCollector(devices=[ModbusDevice(id="a", host="h"), ModbusDevice(id="b", host="h")]),
            CellularCollector(modems=[Modem(id="m", address="tcp://h:1")]),
            SystemCollector(),
        ]
    )
    assert [c.device for c in built] == ["a", "b", "m", "gateway"]


async def test_modbus_report_on_change_with_heartbeat() -> None:
    from settings.edge import ModbusDevice as ModbusSettings
    from tests.edge_agent.devices import ModbusDevice, machine_registers

    device = ModbusDevice(
        machine_registers(
            state=1,
            spindle_temp_c=20.0,
            motor_temp_c=20.0,
            vibration_mm_s=0.0,
            spindle_load_pct=0.0,
            parts_total=0,
            rejects_total=0,
        )
    )
    await device.start()
    cfg = ModbusSettings(id="cnc-1", host="127.0.0.1", port=device.port, report="change", report_period_s=0.3)
    poller = build_collectors([ModbusCollector(devices=[cfg])])[0]
    try:
        assert len(await poller.read()) == 1  # first poll always reports
        assert await poller.read() == []  # unchanged
        await device.set(10, [0, 1])  # one more part
        [r] = await poller.read()
        assert r.parts_total == 1  # type: ignore[attr-defined]
        assert await poller.read() == []
        await asyncio.sleep(0.35)
        assert len(await poller.read()) == 1  # heartbeat although nothing changed
    finally:
        await poller.aclose()
        await device.stop()


async def test_modbus_exception_and_unreachable_device_are_device_errors() -> None:
    from settings.edge import ModbusDevice as ModbusSettings
    from settings.edge import ModbusRegister
    from tests.edge_agent.devices import ModbusDevice, free_port

    device = ModbusDevice([1, 2, 3])
    await device.start()
    far = ModbusSettings(
        id="x",
        host="127.0.0.1",
        port=device.port,
        profile="custom",
        registers=[ModbusRegister(field="f", address=5000)],
        kind="generic",
    )
    poller = build_collectors([ModbusCollector(devices=[far])])[0]
    try:
        with pytest.raises(DeviceError, match=r"Modbus exception 2 \(illegal data address\)"):
            await poller.read()
    finally:
        await poller.aclose()
        await device.stop()
    gone = build_collectors(
        [ModbusCollector(devices=[ModbusSettings(id="y", host="127.0.0.1", port=free_port(), timeout_s=1.0)])]
    )[0]
    with pytest.raises(DeviceError, match="no Modbus TCP answer"):
        await gone.read()


async def test_icmp_where_permitted_else_tcp_or_a_clear_error() -> None:
    target = ProbeServer()
    await target.start()
    try:
        auto = BroadbandProbe(
            BroadbandCollector(
                targets=[
                    ProbeTarget(
                        name="t",
                        host="127.0.0.1",
                        port=target.port,
                        ping="auto",
                        pings=3,
                        download_bytes=0,
                        upload_bytes=0,
                    )
                ],
                timeout_s=2.0,
            )
        )
        [r] = await auto.read()
        assert isinstance(r, Broadband) and r.loss_pct == 0.0 and r.latency_ms is not None
        icmp = BroadbandProbe(
            BroadbandCollector(
                targets=[
                    ProbeTarget(
                        name="t",
                        host="127.0.0.1",
                        port=target.port,
                        ping="icmp",
                        pings=2,
                        download_bytes=0,
                        upload_bytes=0,
                    )
                ],
                timeout_s=2.0,
            )
        )
        try:
            [r] = await icmp.read()
        except DeviceError as exc:  # this machine forbids unprivileged ICMP: the error says how to allow it
            assert "ping_group_range" in str(exc)
        else:
            assert isinstance(r, Broadband) and r.loss_pct == 0.0 and r.latency_ms is not None
    finally:
        await target.stop()


@pytest.mark.parametrize(
    ("text", "offset_ms"),
    [
        ((SAMPLES / "chronyc_tracking.txt").read_text(), -0.412),  # slow of NTP time: behind
        ("System time     : 1.500000000 seconds fast of NTP time\n", 1500.0),
        ("Reference ID    : 00000000 ()\nStratum         : 0\n", None),  # not synchronised yet
        ("", None),
    ],
)
def test_chrony_tracking_gives_the_clock_offset(text: str, offset_ms: float | None) -> None:
    assert parse_chrony_tracking(text) == offset_ms


@pytest.mark.parametrize(
    ("text", "offset_ms"),
    [
        ((SAMPLES / "timesync_status.txt").read_text(), 1.044),  # NTP offset -1.044 ms: ahead
        ("       Offset: +250us\n", -0.25),
        ("       Offset: -2.5s\n", 2500.0),
        ("       Server: n/a\n", None),
    ],
)
def test_timesync_status_gives_the_clock_offset(text: str, offset_ms: float | None) -> None:
    assert parse_timesync_status(text) == offset_ms


async def test_system_monitor_reports_the_clock_offset_from_chrony(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "chronyc"
    fake.write_text(f"#!/bin/sh\ncat '{SAMPLES / 'chronyc_tracking.txt'}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    [r] = await SystemMonitor(SystemCollector(device="gw")).read()
    assert isinstance(r, System) and r.clock_offset_ms == -0.412
