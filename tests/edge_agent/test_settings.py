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
