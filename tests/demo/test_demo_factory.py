"""``parkwatch demo`` at 60x: the scheduled fault of cnc-01 raises a machine_fault alarm, each
gateway's ``meter-1`` is booked to its own factory, and factories carry the scenario's names."""

from __future__ import annotations

import re
import shutil
import signal
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.demo.test_demo import Demo, _wait_for
from tests.servers import free_port

pytestmark = pytest.mark.integration


def test_fast_demo_raises_a_fault_alarm_and_books_energy_per_gateway(tmp_path: Path) -> None:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    api_port, mqtt_port = free_port(), free_port()
    log = tmp_path / "demo.out"
    argv = [
        exe, "demo", "--duration", "150", "--data-dir", str(tmp_path / "data"), "--speed", "60",
        "--survey-seconds", "0", "--mqtt-port", str(mqtt_port), "--api-port", str(api_port), "--quiet",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        text = _wait_for(lambda: "API key (admin):" in log.read_text() and log.read_text(), 120, "the key")
        key = re.search(r"API key \(admin\): (\S+)", text).group(1)  # type: ignore[union-attr]
        demo = Demo(base=f"http://127.0.0.1:{api_port}", key=key, proc=proc, log=log)
        # cnc-01's fault is scheduled 30 simulated minutes in: 30 s at 60x, for 20 s.
        faults = _wait_for(
            lambda: [
                a
                for a in demo.get("/api/v1/alarms?rule_id=machine_fault")["items"]
                if a["source"] == "dv-gw-01/cnc-01"
            ],
            110,
            "cnc-01's machine_fault alarm",
        )
        assert faults[0]["park"] == "deepc-dinhvu" and faults[0]["priority"] == "critical"
        # Both levels over one window that ended 20 s ago: they must book exactly the same
        # readings (a window ending now gains readings between the two requests).
        to = datetime.now(UTC) - timedelta(seconds=20)
        window = f"from={(to - timedelta(hours=2)):%Y-%m-%dT%H:%M:%SZ}&to={to:%Y-%m-%dT%H:%M:%SZ}"
        meters = demo.get(f"/api/v1/factory/energy?level=meter&park=vsip-haiphong&{window}")["items"]
        assert {(m["gw"], m["dev"], m["factory"]) for m in meters} == {
            ("vsip-gw-01", "meter-1", "VSIP Electronics Assembly"),
            ("vsip-gw-02", "meter-1", "VSIP Plastic Moulding"),
        }
        by_factory = {
            f["factory"]: f["energy_kwh"]
            for f in demo.get(f"/api/v1/factory/energy?level=factory&park=vsip-haiphong&{window}")["items"]
        }
        assert by_factory == {m["factory"]: m["energy_kwh"] for m in meters}
        lines = demo.get("/api/v1/factory/oee?level=line")["items"]
        assert lines and all(r["factory"] != "unassigned" and r["line"] for r in lines)
        assert ("Dinh Vu Precision Machining", "line-a") in {(r["factory"], r["line"]) for r in lines}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert f"kept in {tmp_path / 'data' / 'demo-admin.key'} (mode 0600)" in log.read_text()
    assert stat.S_IMODE((tmp_path / "data" / "demo-admin.key").stat().st_mode) == 0o600

    # A second run with the same --data-dir prints the same admin key.
    again = subprocess.run(
        [exe, "demo", "--duration", "1", "--data-dir", str(tmp_path / "data"), "--survey-seconds", "0",
         "--mqtt-port", "0", "--api-port", "0", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"API key (admin): {key}" in again.stdout and "the same key as last time" in again.stdout
