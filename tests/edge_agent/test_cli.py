"""``parkwatch edge init`` and the command-line surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.init_config import InitValues, prompt_missing
from firmware_sim.endpoints import DeviceEndpoint, GatewayEndpoints, SimEndpoints
from parkwatch.cli import main
from settings.edge import (
    BroadbandCollector,
    CellularCollector,
    EdgeSettings,
    ModbusCollector,
    SystemCollector,
)
from settings.loader import load_settings


def test_init_from_flags_writes_a_loadable_commented_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edge.toml"
    code = main(
        [
            "edge",
            "init",
            "--out",
            str(out),
            "--park",
            "hp-deep-c",
            "--gateway",
            "gw-001",
            "--broker-host",
            "mqtt.example.net",
            "--broker-port",
            "8883",
            "--tls-ca",
            "/etc/ca.pem",
            "--username",
            "gw-001",
            "--password",
            "s3cr3t-gw",
            "--modbus",
            "cnc-01=10.0.0.21:502:machine",
            "--modbus",
            "meter-1=10.0.0.22:5020:energy",
            "--modem",
            "modem-1=tcp://127.0.0.1:7001",
            "--probe",
            "isp=192.0.2.10:8080",
            "--non-interactive",
        ]
    )
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert text.count("#") > 10
    s = load_settings(EdgeSettings, out, env={})
    assert (s.agent.park, s.agent.gateway, s.broker.host, s.broker.port) == (
        "hp-deep-c",
        "gw-001",
        "mqtt.example.net",
        8883,
    )
    assert s.broker.tls is not None and s.broker.tls.ca_file == "/etc/ca.pem"
    types = [type(c) for c in s.collectors]
    assert types == [ModbusCollector, CellularCollector, BroadbandCollector, SystemCollector]
    modbus = s.collectors[0]
    assert isinstance(modbus, ModbusCollector)
    assert [(d.id, d.port, d.kind) for d in modbus.devices] == [
        ("cnc-01", 502, "machine"),
        ("meter-1", 5020, "energy"),
    ]
    cell = s.collectors[1]
    assert isinstance(cell, CellularCollector) and cell.modems[0].uplink is True


def test_init_refuses_to_overwrite_and_reports_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edge.toml"
    out.write_text("keep me")
    assert (
        main(["edge", "init", "--out", str(out), "--park", "p", "--gateway", "g", "--non-interactive"]) == 2
    )
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert (
        main(
            [
                "edge",
                "init",
                "--out",
                str(out),
                "--park",
                "bad park",
                "--gateway",
                "g",
                "--force",
                "--non-interactive",
            ]
        )
        == 2
    )
    assert "agent.park" in capsys.readouterr().err
    assert main(["edge", "init", "--out", str(tmp_path / "x.toml"), "--non-interactive"]) == 2
    assert "--park and --gateway are required" in capsys.readouterr().err


def test_init_from_simulator_endpoints(tmp_path: Path) -> None:
    endpoints = SimEndpoints(
        scenario="test",
        seed=1,
        speed=1.0,
        start_ms=0,
        gateways={
            "gw-07": GatewayEndpoints(
                park="hp-nam-dinh-vu",
                lat=20.84,
                lon=106.77,
                mobile=False,
                devices=[
                    DeviceEndpoint(id="cnc-1", kind="machine", host="127.0.0.1", port=15020, unit=1),
                    DeviceEndpoint(id="env-1", kind="environment", host="127.0.0.1", port=15021, unit=1),
                    DeviceEndpoint(id="modem-vt", kind="modem", host="127.0.0.1", port=17001, gnss=False),
                    DeviceEndpoint(
                        id="isp-a", kind="probe_target", host="127.0.0.1", host6="::1", port=18080
                    ),
                ],
            )
        },
    )
    ep = tmp_path / "endpoints.json"
    ep.write_bytes(endpoints.to_json())
    out = tmp_path / "edge.toml"
    assert main(["edge", "init", "--endpoints", str(ep), "--out", str(out), "--non-interactive"]) == 0
    s = load_settings(EdgeSettings, out, env={})
    assert (s.agent.park, s.agent.gateway, s.agent.lat) == ("hp-nam-dinh-vu", "gw-07", 20.84)
    modbus = s.collectors[0]
    assert isinstance(modbus, ModbusCollector) and [d.profile for d in modbus.devices] == [
        "machine",
        "environment",
    ]
    probe = s.collectors[2]
    assert isinstance(probe, BroadbandCollector) and probe.targets[0].ipv6_host == "::1"


def test_interactive_prompts_fill_the_missing_values() -> None:
    answers = iter(
        ["bad id!", "hp-deep-c", "gw-9", "", "1884", "", "", "cnc-1 10.0.0.5:502 machine", "nonsense", ""]
    )
    v = InitValues()
    prompt_missing(v, ask=lambda _q: next(answers))
    assert (v.park, v.gateway, v.broker_port, v.modbus) == (
        "hp-deep-c",
        "gw-9",
        1884,
        [("cnc-1", "10.0.0.5", 502, "machine")],
    )


@pytest.mark.parametrize("sub", ["init", "doctor", "run"])
def test_every_subcommand_has_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["edge", sub, "--help"])
    assert exc.value.code == 0
    assert "--config" in capsys.readouterr().out or sub == "init"


def test_run_with_a_bad_config_says_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "run", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "parkwatch edge init" in err
