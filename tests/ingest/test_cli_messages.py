"""What ``parkwatch ingest`` tells its operator (the real console script, real Mosquitto): a refused
login names the user and the settings, an unreachable InfluxDB its URL, a user without password is
refused by ``--check``; and the ingester is ready only once its subscription is acknowledged."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.service import Ingester
from tests.conftest import _unavailable
from tests.ingest.helpers import ingest_settings
from tests.servers import ServerError, ServerProcess, free_port, mosquitto_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _exe() -> str:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return exe


def _config(tmp_path: Path, *, port: int, user: str, password: str, sink: str = "") -> Path:
    cfg = tmp_path / "ingest.toml"
    cfg.write_text(
        f'[broker]\nport = {port}\nusername = "{user}"\npassword = "{password}"\nreconnect_min_s = 0.1\n'
        f'reconnect_max_s = 0.2\n[ingest]\nspool_dir = "{tmp_path / "spool"}"\nmetrics_enabled = false\n'
        + (sink or f'[sink]\ntype = "duckdb"\npath = "{tmp_path / "s.duckdb"}"\n')
    )
    return cfg


def _stderr_until(cfg: Path, needle: str, timeout_s: float = 30.0) -> list[str]:
    """Run the ingester until a stderr line contains ``needle``; return the lines read."""
    proc = subprocess.Popen([_exe(), "ingest", "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks on the next log line: the wait is on the event itself
            lines.append(line.rstrip("\n"))
            if needle in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    assert any(needle in line for line in lines), "\n".join(lines[-20:])
    return lines


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[ServerProcess]:
    pwfile = tmp_path / "passwd"
    try:
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(pwfile), "ingest", "right-pass"],
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


def test_a_refused_login_names_the_user_and_the_settings(secured: ServerProcess, tmp_path: Path) -> None:
    cfg = _config(tmp_path, port=secured.port, user="ingest", password="wrong-pass")
    lines = _stderr_until(cfg, "refusal 2")
    refused = [line for line in lines if "refused the login" in line]
    assert refused and "'ingest'" in refused[0] and "[broker] username and password" in refused[0]
    assert "PARKWATCH_BROKER__PASSWORD" in refused[0] and "retrying with backoff" in refused[0]
    assert not [line for line in lines if "Protocol error" in line or "Traceback" in line], lines


def test_an_unreachable_influxdb_is_named_by_its_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sink = f'[sink]\ntype = "influxdb"\nurl = "{url}"\n'
    cfg = _config(tmp_path, port=free_port(), user="", password="", sink=sink)
    lines = _stderr_until(cfg, "unreachable")
    assert any(f"InfluxDB at {url} unreachable" in line for line in lines), lines


def test_check_refuses_a_user_without_password(tmp_path: Path) -> None:
    cfg = _config(tmp_path, port=1883, user="ingest", password="")
    res = subprocess.run([_exe(), "ingest", "--config", str(cfg), "--check"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == "", res.stdout
    (line,) = res.stderr.splitlines()
    assert "[broker] username is 'ingest' but its password is empty" in line and str(cfg) in line


async def test_ready_only_after_the_suback(mosquitto: ServerProcess, topic_root: str, tmp_path: Path) -> None:
    import asyncio

    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ready-{topic_root.replace('/', '-')}",
        sink={"type": "duckdb", "path": str(tmp_path / "s.duckdb")},
        tmp=tmp_path,
    )
    ing = Ingester(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(ing.run(stop))
    try:
        async with asyncio.timeout(20):
            await ing.ready.wait()
        assert ing.consumer.subscribed.is_set()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
