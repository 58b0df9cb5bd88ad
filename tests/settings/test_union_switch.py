"""An environment override of a union's ``type`` switches it over a file written for the other
type: the sample configs' own examples (``PARKWATCH_SINK__TYPE=influxdb``,
``PARKWATCH_BACKEND__TYPE=influxdb``) load; an override that belongs to another type says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.api import ApiSettings, DuckdbQuerySettings, InfluxQuerySettings
from settings.ingest import InfluxSinkSettings, IngestSettings
from settings.serve import ServeSettings

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_sink_type_override_drops_the_duckdb_keys_of_the_file() -> None:
    env = {"PARKWATCH_SINK__TYPE": "influxdb", "PARKWATCH_SINK__URL": "http://127.0.0.1:18086"}
    s = load_settings(IngestSettings, CONFIG / "ingest.toml", env=env)
    assert isinstance(s.sink, InfluxSinkSettings)
    assert s.sink.url == "http://127.0.0.1:18086" and s.sink.database == "parkwatch"


def test_backend_type_override_switches_the_api_to_influxdb() -> None:
    env = {"PARKWATCH_BACKEND__TYPE": "influxdb", "PARKWATCH_BACKEND__URL": "http://influx:8086"}
    s = load_settings(ApiSettings, CONFIG / "api.toml", env=env)
    assert isinstance(s.backend, InfluxQuerySettings) and s.backend.url == "http://influx:8086"


def test_switching_back_to_duckdb_keeps_the_shared_keys(tmp_path: Path) -> None:
    conf = tmp_path / "api.toml"
    conf.write_text('[backend]\ntype = "influxdb"\nurl = "http://influx:8086"\ntoken = "abc"\n')
    s = load_settings(ApiSettings, conf, env={"PARKWATCH_BACKEND__TYPE": "duckdb"})
    assert s.backend == DuckdbQuerySettings()


def test_an_override_of_the_other_type_names_the_type_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(ApiSettings, CONFIG / "api.toml", env={"PARKWATCH_BACKEND__URL": "http://influx:8086"})
    assert "url is a key of type influxdb" in str(err.value)
    assert "PARKWATCH_BACKEND__TYPE=influxdb" in str(err.value)


def test_a_misspelt_override_is_still_an_error_after_a_switch() -> None:
    env = {"PARKWATCH_SINK__TYPE": "influxdb", "PARKWATCH_SINK__DATABSE": "x"}
    with pytest.raises(ConfigError, match="unknown field `databse`"):
        load_settings(IngestSettings, CONFIG / "ingest.toml", env=env)


def test_the_serve_sample_loads_and_splits_into_ingester_and_api() -> None:
    s = load_settings(ServeSettings, CONFIG / "parkwatch.toml", env={})
    ingest, api = s.ingest_settings(), s.api_settings()
    assert isinstance(api.backend, DuckdbQuerySettings) and api.backend.path == s.store.path
    assert ingest.sink == s.store and api.api.dashboard
    on = load_settings(
        ServeSettings,
        CONFIG / "parkwatch.toml",
        env={"PARKWATCH_EMBEDDED_BROKER__ENABLED": "true", "PARKWATCH_EMBEDDED_BROKER__PORT": "11883"},
    ).ingest_settings()
    assert (on.broker.host, on.broker.port, on.broker.protocol) == ("127.0.0.1", 11883, "3.1.1")


def test_one_environment_serves_the_api_and_the_ingesters() -> None:
    env = {
        "PARKWATCH_SINK__TYPE": "influxdb",
        "PARKWATCH_INGEST__SHARE_GROUP": "ingest",
        "PARKWATCH_BACKEND__TYPE": "influxdb",
    }
    api = load_settings(ApiSettings, CONFIG / "api.toml", env=env)
    ingest = load_settings(IngestSettings, CONFIG / "ingest.toml", env=env)
    assert isinstance(api.backend, InfluxQuerySettings) and isinstance(ingest.sink, InfluxSinkSettings)
    assert ingest.ingest.share_group == "ingest"


def test_a_table_no_deployable_has_is_still_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown field `snik`"):
        load_settings(IngestSettings, CONFIG / "ingest.toml", env={"PARKWATCH_SNIK__TYPE": "influxdb"})
