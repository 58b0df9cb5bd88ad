"""``parkwatch serve`` from the command line: help, settings check with secrets hidden, errors
that name the key, a busy port in one line, the ingester's own account in the broker files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from api.mosquitto import verify_password
from api.registry import Registry
from parkwatch.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "parkwatch.toml"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkwatch", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


def test_help_names_the_sample_and_the_actions() -> None:
    out = run("--help").stdout
    for word in ("config/parkwatch.toml", "key-create", "mosquitto-files", "--port"):
        assert word in out


def test_check_prints_the_settings_with_secrets_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKWATCH_BROKER__PASSWORD", "a-real-secret-0123456789")
    res = run("--config", str(SAMPLE), "--check")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["broker"]["password"] == "***" and "a-real-secret" not in res.stdout
    assert shown["store"]["path"] == "parkwatch.duckdb" and shown["api"]["dashboard"] is True


def test_a_username_without_password_is_refused_before_starting() -> None:
    res = run("--config", str(SAMPLE), "--check")
    assert res.returncode == 2 and "PARKWATCH_BROKER__PASSWORD" in res.stderr


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text("[embedded_broker]\nport = 70000\n")
    res = run("--config", str(cfg), "--check")
    assert res.returncode == 2 and "embedded_broker.port" in res.stderr


def test_busy_api_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = tmp_path / "serve.toml"
        cfg.write_text("[embedded_broker]\nenabled = true\n")
        res = run("--config", str(cfg), "--port", str(port), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"parkwatch serve: API port 127.0.0.1:{port} is already in use; pass another --port (0 = any free port)"
    ]


def test_broker_files_hold_the_ingesters_own_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "reg.sqlite"}"\n'
        '[broker]\nusername = "parkwatch-ingest"\npassword = "ingest-secret-0123456789"\n'
    )
    assert main(["serve", "--config", str(cfg), "mosquitto-files", "--out-dir", str(tmp_path / "auth")]) == 0
    [(user, hashed)] = Registry(tmp_path / "reg.sqlite").services()
    assert user == "parkwatch-ingest" and verify_password("ingest-secret-0123456789", hashed)
    assert (tmp_path / "auth" / "passwd").read_text().startswith("parkwatch-ingest:")
    assert "1 accounts" in capsys.readouterr().out


def test_more_api_workers_are_refused_with_the_way_out(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text("[api]\nworkers = 4\n")
    res = run("--config", str(cfg), "--check")
    assert res.returncode == 2 and "[api] workers is 4" in res.stderr and "parkwatch api" in res.stderr
