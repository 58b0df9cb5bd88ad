"""Ingester settings: the sample config loads; the sink union and bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.ingest import DuckdbSinkSettings, InfluxSinkSettings, IngestSettings

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "ingest.toml"


def test_sample_config_loads() -> None:
    s = load_settings(IngestSettings, SAMPLE, env={})
    assert isinstance(s.sink, DuckdbSinkSettings)
    assert s.client_id == "parkwatch-ingest" and s.ingest.h3_resolution == 10


def test_env_switches_the_sink() -> None:
    env = {
        "PARKWATCH_SINK__TYPE": "influxdb",
        "PARKWATCH_SINK__DATABASE": "x",
        "PARKWATCH_SINK__TOKEN": "t0k",
    }
    s = load_settings(IngestSettings, None, env=env)
    assert isinstance(s.sink, InfluxSinkSettings) and s.sink.database == "x" and s.sink.token == "t0k"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PARKWATCH_SINK__TYPE": "mysql"}, "sink.type"),
        ({"PARKWATCH_INGEST__H3_RESOLUTION": "16"}, "ingest.h3_resolution"),
        ({"PARKWATCH_INGEST__MAX_UNACKED": "0"}, "ingest.max_unacked"),
        ({"PARKWATCH_SINK__TYPE": "influxdb", "PARKWATCH_SINK__TOKEN": "change-me"}, "sink.token"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(IngestSettings, None, env=env)
