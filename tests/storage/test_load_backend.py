"""Query backends are built from their ``[backend]`` settings table through the lazy registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from settings.api import DuckdbQuerySettings, InfluxQuerySettings
from storage.query import QueryError, load_backend
from storage.query_influx import InfluxQuery


def test_the_influxdb_table_builds_the_influx_backend_with_its_values() -> None:
    backend = load_backend(
        InfluxQuerySettings(url="http://influx.test:8086", database="plant", retention_policy="raw"),
        ingest_resolution=9,
    )
    try:
        assert isinstance(backend, InfluxQuery)
        assert backend.ingest_resolution == 9
        assert backend.data_version() is None  # no fingerprint: answers expire by their TTL
    finally:
        backend.close()


def test_the_duckdb_table_opens_its_file_and_names_it_when_it_cannot(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    with pytest.raises(QueryError, match=re.escape(str(missing))):
        load_backend(DuckdbQuerySettings(path=str(missing)), ingest_resolution=10)
