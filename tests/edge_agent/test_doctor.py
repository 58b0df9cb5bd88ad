"""``parkwatch edge doctor`` against a real Mosquitto with a password file and unreachable things."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from parkwatch.cli import main
from tests.conftest import _unavailable
from tests.edge_agent.devices import ModbusDevice, machine_registers
from tests.edge_agent.helpers import agent_config
from tests.servers import ServerError, ServerProcess, free_port, mosquitto_server

T = TypeVar("T")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[ServerProcess]:
    """Mosquitto that only lets gw-1 in with the password ``right-pass``."""
    pwfile = tmp_path / "passwd"
    try:
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(pwfile), "gw-1", "right-pass"],
            check=True,
            capture_output=True,
        )
        pwfile.chmod(0o644)
        conf = f"password_file {pwfile}\n" + ("user root\n" if os.geteuid() == 0 else "")
        server = mosquitto_server(tmp_path / "mq", extra_conf=conf)
        server.start()
    except (ServerError, OSError, subprocess.CalledProcessError) as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


def doctor(tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "edge.toml"
    path.write_text(config)
    code = main(["edge", "doctor", "--config", str(path)])
    return code, capsys.readouterr().out


def row(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(name))


async def test_all_good_then_wrong_password(
    secured_broker: ServerProcess, topic_root: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = ModbusDevice(
        machine_registers(
            state=1,
            spindle_temp_c=20,
            motor_temp_c=20,
            vibration_mm_s=0,
            spindle_load_pct=0,
            parts_total=0,
            rejects_total=0,
        )
    )
    await machine.start()
    try:
        good = agent_config(
            tmp_path,
            port=secured_broker.port,
            root=topic_root,
            username="gw-1",
            password="right-pass",
            modbus=[("cnc-1", machine.port, "machine")],
        )
        code, out = await _in_thread(doctor, tmp_path, good, capsys)
        assert code == 0, out
        for name in ("config", "broker", "credentials", "acl publish", "acl subscribe", "device cnc-1"):
            assert "PASS" in row(out, name), out
        bad = good.replace('password = "right-pass"', 'password = "wrong-pass"')
        code, out = await _in_thread(doctor, tmp_path, bad, capsys)
        assert code == 1
        line = row(out, "credentials")
        assert "FAIL" in line and "refused the login" in line and "gw-1" in line
        assert "fix: set [broker] username/password" in out
    finally:
        await machine.stop()


async def test_unreachable_broker_and_device(
    tmp_path: Path, topic_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = agent_config(
        tmp_path, port=free_port(), root=topic_root, modbus=[("cnc-9", free_port(), "machine")]
    )
    code, out = await _in_thread(doctor, tmp_path, cfg, capsys)
    assert code == 1
    assert "FAIL" in row(out, "broker") and "cannot reach 127.0.0.1" in row(out, "broker")
    device = row(out, "device cnc-9")
    assert "FAIL" in device and "no Modbus TCP answer" in device
    assert "powered and reachable" in out


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = agent_config(tmp_path, port=1883, root="t/pw").replace("max_readings = 50", "max_readings = 5000")
    code, out = doctor(tmp_path, cfg, capsys)
    assert code == 2
    assert "FAIL" in row(out, "config") and "batch.max_readings" in row(out, "config")


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    # The doctor runs its own event loop (asyncio.run), so it cannot run inside the test's loop;
    # the Modbus device served by the test's loop keeps answering meanwhile.
    import asyncio

    return await asyncio.to_thread(fn, *args)
