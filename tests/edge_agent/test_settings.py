"""The agent's typed settings and the commented sample config."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.collectors import COLLECTORS, build_collectors
from settings.edge import CellularCollector, EdgeSettings, ModbusCollector
from settings.errors import ConfigError
from settings.loader import load_settings, settings_from_dict

SAMPLE = Path(__file__).parents[2] / "config" / "edge.toml"


def test_sample_config_loads_with_every_collector_type() -> None:
    s = load_settings(EdgeSettings, SAMPLE, env={})
    assert {c.__struct_config__.tag for c in s.collectors} == set(COLLECTORS)
    assert s.client_id == "pw-edge-gw-001"
    assert s.buffer_path == "/var/lib/parkwatch-edge/buffer.sqlite"
    modbus = next(c for c in s.collectors if isinstance(c, ModbusCollector))
    assert [d.id for d in modbus.devices] == ["cnc-01", "meter-01", "pump-07"]
    assert len(build_collectors(s.collectors)) == 8


def test_environment_overrides_apply(tmp_path: Path) -> None:
    s = load_settings(
        EdgeSettings, SAMPLE, env={"PARKWATCH_BROKER__PORT": "8883", "PARKWATCH_AGENT__GATEWAY": "gw-777"}
    )
    assert (s.broker.port, s.agent.gateway) == (8883, "gw-777")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({}, "agent"),
        ({"agent": {"park": "p 1", "gateway": "g"}}, "agent.park"),
        ({"agent": {"park": "p", "gateway": "g"}, "batch": {"max_readings": 1001}}, "batch.max_readings"),
        ({"agent": {"park": "p", "gateway": "g"}, "collectors": [{"type": "lora"}]}, "collectors[0]"),
        (
            {
                "agent": {"park": "p", "gateway": "g"},
                "collectors": [{"type": "modbus", "devices": [{"id": "x", "host": "h", "port": 0}]}],
            },
            "collectors[0].devices[0].port",
        ),
        (
            {"agent": {"park": "p", "gateway": "g"}, "broker": {"password": "change-me"}},
            "broker.password",
        ),
    ],
)
def test_invalid_settings_name_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_from_dict(EdgeSettings, table, where="edge.toml")
    assert key in str(exc.value) and "edge.toml" in str(exc.value)


def test_collectors_are_a_tagged_union() -> None:
    s = settings_from_dict(
        EdgeSettings,
        {
            "agent": {"park": "p", "gateway": "g"},
            "collectors": [{"type": "cellular", "modems": [{"id": "m", "address": "tcp://h:1"}]}],
        },
    )
    assert isinstance(s.collectors[0], CellularCollector)
    assert s.collectors[0].modems[0].gnss is True


MODBUS_SAMPLE = Path(__file__).parents[2] / "config" / "edge-modbus.toml"


def test_modbus_sample_config_loads_with_every_transport() -> None:
    from edge_agent.collectors.modbus import ModbusPoller
    from edge_agent.collectors.modbus_bus import silent_interval_s

    s = load_settings(EdgeSettings, MODBUS_SAMPLE, env={})
    [modbus] = s.collectors
    assert isinstance(modbus, ModbusCollector)
    assert {b.transport for b in modbus.buses} == {"rtu", "rtu_over_tcp"}
    pollers = build_collectors(s.collectors)
    assert [p.device for p in pollers] == ["meter-07", "env-hall-a", "press-02", "cnc-01"]
    assert all(isinstance(p, ModbusPoller) for p in pollers)
    meter, env, press, cnc = pollers
    assert meter.bus is env.bus and meter.bus is not press.bus and cnc.bus not in (meter.bus, press.bus)  # type: ignore[attr-defined]
    # 9600 bit/s 8E1: 11 bits a character, 3.5 characters of silence between frames.
    assert silent_interval_s(modbus.buses[0]) == pytest.approx(3.5 * 11 / 9600)
    assert silent_interval_s(modbus.buses[1]) == 0.0


def _modbus(**collector: object) -> dict[str, object]:
    return {"agent": {"park": "p", "gateway": "g"}, "collectors": [{"type": "modbus", **collector}]}


RTU_A = {"id": "a", "transport": "rtu", "serial_port": "/dev/ttyUSB0"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            _modbus(devices=[{"id": "m1", "host": "10.0.0.1", "bus": "a"}], buses=[RTU_A]),
            "collectors[0].devices[0]: device m1: give either host (a Modbus TCP device) or bus",
        ),
        (_modbus(devices=[{"id": "m1"}]), "collectors[0].devices[0]: device m1: give either host"),
        (
            _modbus(devices=[{"id": "m1", "bus": "b"}], buses=[RTU_A]),
            "collectors[0]: device m1: bus 'b' is not defined; add a [[collectors.buses]] table with id = 'b' (defined: a)",
        ),
        (
            _modbus(devices=[], buses=[{"id": "a", "transport": "rtu"}]),
            'collectors[0].buses[0]: bus a: transport "rtu" needs serial_port',
        ),
        (
            _modbus(
                devices=[], buses=[{"id": "a", "transport": "rtu_over_tcp", "serial_port": "/dev/ttyS0"}]
            ),
            'collectors[0].buses[0]: bus a: transport "rtu_over_tcp" needs host',
        ),
        (
            _modbus(devices=[], buses=[{**RTU_A, "parity": "even"}]),
            "collectors[0].buses[0].parity: Invalid enum value 'even'",
        ),
        (
            _modbus(devices=[], buses=[{**RTU_A, "baudrate": 0}]),
            "collectors[0].buses[0].baudrate: Expected `int` >= 300",
        ),
        (
            _modbus(devices=[], buses=[{**RTU_A, "stopbits": 3}]),
            "collectors[0].buses[0].stopbits: Invalid enum value 3",
        ),
        (
            _modbus(devices=[], buses=[RTU_A, {**RTU_A, "id": "b"}]),
            "collectors[0]: buses a and b both use serial port /dev/ttyUSB0: one port is one bus",
        ),
        (_modbus(devices=[], buses=[RTU_A, RTU_A]), "collectors[0]: bus id a is defined more than once"),
        (
            _modbus(devices=[{"id": "m1", "bus": "a", "unit_id": 0}], buses=[RTU_A]),
            "collectors[0]: device m1: unit_id 0 cannot be polled on an RTU line; use 1-247",
        ),
        (
            _modbus(
                devices=[{"id": "m1", "bus": "a", "unit_id": 3}, {"id": "m2", "bus": "a", "unit_id": 3}],
                buses=[RTU_A],
            ),
            "collectors[0]: devices m1 and m2 both have unit_id 3 on bus a; every device of a bus needs its own unit id",
        ),
        (
            _modbus(devices=[{"id": "m1", "bus": "a", "timeout_s": 0}], buses=[RTU_A]),
            "collectors[0].devices[0].timeout_s: Expected `float` > 0.0",
        ),
    ],
)
def test_invalid_modbus_buses_and_devices_say_what_to_fix(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(EdgeSettings, table, where="/etc/parkwatch/edge.toml")
    assert str(info.value).startswith(f"/etc/parkwatch/edge.toml: {message}")
