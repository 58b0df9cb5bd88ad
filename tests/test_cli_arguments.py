"""Typos and busy ports on the command line give one sentence, not a traceback; the real
``parkwatch`` console script runs as a subprocess."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.ports import PortBusyError, choose_port
from tests.servers import free_port


def parkwatch(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def _error_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    # argparse's usage block (``usage:`` and its indented continuation lines) and INFO log lines
    # (e.g. the registry created on first use) are not error lines.
    return [
        line
        for line in res.stderr.splitlines()
        if line and not line.startswith(("usage:", " ")) and not re.match(r"\d{4}-\d\d-\d\d \S+ INFO ", line)
    ]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--api-port", "99999"), "99999 is not a TCP port"),
        (("--mqtt-port", "-1"), "-1 is not a TCP port"),
        (("--speed", "0"), "--speed: 0 must be above 0"),
        (("--speed", "nan"), "'nan' is not a finite number"),
        (("--survey-seconds", "-5"), "--survey-seconds: -5 must be 0 or more"),
        (("--duration", "0"), "--duration: 0 must be above 0"),
    ],
)
def test_demo_rejects_bad_values_in_one_line(args: tuple[str, ...], says: str) -> None:
    res = parkwatch("demo", *args)
    lines = _error_lines(res)
    assert res.returncode == 2 and len(lines) == 1 and says in lines[0], res.stderr


def test_demo_explicit_busy_port_is_one_line_before_anything_starts(busy_port: int, tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = parkwatch("demo", "--api-port", str(busy_port), "--mqtt-port", "0", "--data-dir", str(tmp_path))
    lines = _error_lines(res)
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"API port 127.0.0.1:{busy_port} is already in use; pass another --api-port" in lines[0]
    assert not (tmp_path / "parkwatch.duckdb").exists() and time.monotonic() - t0 < 20


def test_a_busy_default_port_is_replaced_and_said(busy_port: int) -> None:
    choice = choose_port("127.0.0.1", None, default=busy_port, what="API", option="--api-port")
    assert choice.port != busy_port and f"port {busy_port} is in use, using {choice.port}" in choice.note
    with pytest.raises(PortBusyError, match="already in use"):
        choose_port("127.0.0.1", busy_port, default=8080, what="API", option="--api-port")
    assert choose_port("127.0.0.1", 0, default=busy_port, what="API", option="--api-port").port > 0


def test_api_port_out_of_range_is_one_line() -> None:
    res = parkwatch("api", "--port", "99999")
    lines = _error_lines(res)
    assert res.returncode == 2 and len(lines) == 1 and "99999 is not a TCP port" in lines[0]


def _api_config(tmp_path: Path, backend: str) -> Path:
    cfg = tmp_path / "api.toml"
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "registry.sqlite"}"\n'
        '[[keys]]\nname = "t"\nrole = "admin"\nsha256 = "' + "0" * 64 + '"\n' + backend
    )
    return cfg


def test_api_check_with_influxdb_down_names_the_url_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cfg = _api_config(tmp_path, f'[backend]\ntype = "influxdb"\nurl = "{url}"\ndatabase = "x"\n')
    res = parkwatch("api", "--config", str(cfg), "--check")
    lines = _error_lines(res)
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert url in lines[0] and "unreachable" in lines[0] and str(cfg) in lines[0]


def test_api_busy_port_is_one_line(tmp_path: Path, busy_port: int) -> None:
    cfg = _api_config(tmp_path, f'[backend]\ntype = "duckdb"\npath = "{tmp_path / "none.duckdb"}"\n')
    _make_store(tmp_path / "none.duckdb")
    res = parkwatch("api", "--config", str(cfg), "--port", str(busy_port))
    lines = _error_lines(res)
    assert res.returncode == 2 and len(lines) == 1 and f"127.0.0.1:{busy_port} is already in use" in lines[0]


def test_api_port_0_listens_on_a_free_port_and_says_where(tmp_path: Path) -> None:
    cfg = _api_config(tmp_path, f'[backend]\ntype = "duckdb"\npath = "{tmp_path / "s.duckdb"}"\n')
    _make_store(tmp_path / "s.duckdb")
    exe = shutil.which("parkwatch")
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "api", "--config", str(cfg), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "listening on" not in line:  # INFO lines may come first (registry created)
            line = proc.stderr.readline()
        assert line.startswith("parkwatch api: listening on http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        assert port > 0
        # The socket listens before the line is printed: the first request is queued, not refused.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(30)


def _make_store(path: Path) -> None:
    import duckdb

    from storage.duckdb_schema import ddl

    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    con.close()
