"""The latest gateway status keeps the counters of earlier ones when the final status (a clean
stop or the Last Will) carries only the state; both backends, real DuckDB file and real InfluxDB."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from storage.query import QueryBackend, Scope
from storage.query_duckdb import DuckDBQuery
from storage.query_influx import InfluxQuery
from tests.api.data import T0, Rows, load_duckdb, load_influx
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

ROWS: Rows = {
    "gateway_status": [
        {"ts": T0, "park": "p1", "gw": "gw-1", "state": "online", "agent_version": "0.1.0",
         "config_hash": "abc", "backlog": 12, "dropped": 3, "buffer_pct": 4.0, "uplink_operator": "Alpha",
         "uplink_tech": "LTE", "uplink_rsrp_dbm": -90.0, "uplink_sinr_db": 10.0, "config_error": "bad key"},
        {"ts": T0 + timedelta(minutes=1), "park": "p1", "gw": "gw-1", "state": "online",
         "agent_version": "0.1.1", "backlog": 0, "dropped": 5, "unconfirmed": 40, "expired": 2},
        {"ts": T0 + timedelta(minutes=2), "park": "p1", "gw": "gw-1", "state": "offline"},
    ]
}  # fmt: skip
SCOPE = Scope(parks=None, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1))


def _check(backend: QueryBackend) -> None:
    (row,) = backend.status(SCOPE, latest=True).rows()
    assert row["state"] == "offline" and row["ts_ms"] == int((T0 + timedelta(minutes=2)).timestamp() * 1000)
    assert row["dropped"] == 5 and row["backlog"] == 0 and row["agent_version"] == "0.1.1"
    assert row["unconfirmed"] == 40 and row["expired"] == 2  # gap repair's counters
    assert row["config_hash"] == "abc" and row["buffer_pct"] == 4.0 and row["uplink_operator"] == "Alpha"
    assert row["config_error"] is None  # the later statuses said nothing was wrong


def test_duckdb_latest_status_keeps_counters(tmp_path: Path) -> None:
    load_duckdb(tmp_path / "s.duckdb", ROWS)
    backend = DuckDBQuery(path=tmp_path / "s.duckdb")
    try:
        _check(backend)
    finally:
        backend.close()


def test_influx_latest_status_keeps_counters(influxdb: ServerProcess) -> None:
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_carry_{uuid.uuid4().hex[:8]}"
    load_influx(url, db, ROWS)
    backend = InfluxQuery(url=url, database=db)
    try:
        _check(backend)
    finally:
        backend.close()
