"""``parkwatch sim``: help for every subcommand, ``run`` end to end, errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.endpoints import SimEndpoints
from parkwatch.cli import main


@pytest.mark.parametrize("sub", ["run", "truth", "fleet"])
def test_subcommand_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sim", sub, "--help"])
    assert info.value.code == 0
    assert f"usage: parkwatch sim {sub}" in capsys.readouterr().out


def test_group_without_subcommand_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim"]) == 2
    err = capsys.readouterr().err
    assert "run" in err and "truth" in err and "fleet" in err


def test_run_prints_and_writes_endpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "endpoints.json"
    argv = ["sim", "run", "--scenario", "default", "--gateway", "td-gw-01", "--duration", "0.2"]
    assert main([*argv, "--endpoints-out", str(out), "--seed", "5"]) == 0
    text = capsys.readouterr().out
    ep = SimEndpoints.load(out)
    assert list(ep.gateways) == ["td-gw-01"] and ep.seed == 5
    for _, dev in ep.devices():
        assert f"{dev.host}:{dev.port}" in text
    assert json.loads(out.read_text(encoding="utf-8"))["gateways"]["td-gw-01"]["park"] == "trangdue"


def test_run_rejects_unknown_gateway_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "run", "--gateway", "nope", "--duration", "0.1"]) == 2
    assert "unknown gateway" in capsys.readouterr().err
    assert main(["sim", "run", "--scenario", str(tmp_path / "none.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_fleet_rejects_a_bad_broker_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "fleet", "--broker", "localhost"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_fleet_says_when_the_broker_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "fleet", "--broker", "127.0.0.1:1", "--gateways", "1", "--duration", "1"]
    assert main([*argv, "--connect-timeout", "0.5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no gateway could connect to mqtt://127.0.0.1:1" in err and "broker running" in err
