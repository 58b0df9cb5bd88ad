"""No log line per HTTP request at INFO; ``parkwatch demo --quiet`` prints no amqtt warnings.

The CLI checks run the real ``parkwatch`` console script (real InfluxDB, real embedded broker).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import key_hash
from settings.runtime import setup_logging
from tests.api.data import influx_query
from tests.servers import ServerProcess, free_port


@pytest.fixture
def restored_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.usefixtures("restored_root_logger")
def test_http_client_requests_are_not_logged_at_info() -> None:
    setup_logging("INFO")
    for name in ("httpx", "httpcore"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
    setup_logging("DEBUG")
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)


def _exe() -> str:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return exe


@pytest.mark.integration
def test_influxdb_backed_api_does_not_log_each_query(influxdb: ServerProcess, tmp_path: Path) -> None:
    key = "test-key-logging"
    db = f"pw_log_{uuid.uuid4().hex[:8]}"
    influx_query(f"http://{influxdb.host}:{influxdb.port}", "", f'CREATE DATABASE "{db}"')
    cfg = tmp_path / "api.toml"
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "registry.sqlite"}"\ncache_ttl_s = 0\n[logging]\nlevel = "INFO"\n'
        f'[backend]\ntype = "influxdb"\nurl = "http://{influxdb.host}:{influxdb.port}"\n'
        f'database = "{db}"\n'
        f'[[keys]]\nname = "t"\nrole = "admin"\nsha256 = "{key_hash(key)}"\n'
    )
    proc = subprocess.Popen(
        [_exe(), "api", "--config", str(cfg), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "listening on" not in line:  # INFO lines may come first (registry created)
            line = proc.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        for path in ("/api/v1/gateways", "/api/v1/alarms", "/api/v1/factory/oee"):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key})
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 200 and "items" in json.loads(resp.read())
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "HTTP Request" not in err and "httpx" not in err, err


@pytest.mark.integration
def test_quiet_demo_prints_no_amqtt_warnings(tmp_path: Path) -> None:
    mqtt_port = free_port()
    log = tmp_path / "demo.out"
    argv = [_exe(), "demo", "--quiet", "--duration", "3", "--survey-seconds", "0", "--data-dir", str(tmp_path / "d"),
            "--mqtt-port", str(mqtt_port), "--api-port", "0"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "API key (admin):" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.2)  # the demo's own output is the event; a file has nothing to await
        # A client that connects and says nothing: amqtt warns "No data from ...".
        with socket.create_connection(("127.0.0.1", mqtt_port), timeout=5):
            pass
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "No data" not in text and "Failed to initialize" not in text and "Traceback" not in text, text
