"""The API answers the same over InfluxDB as over DuckDB (real servers, same data)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from storage.query_influx import InfluxQuery
from tests.api.conftest import WINDOW, api_settings, headers
from tests.api.data import T0, dataset, load_influx
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clients(
    store: Path, influxdb: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient]]:
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_api_{uuid.uuid4().hex[:8]}"
    load_influx(url, db, dataset())
    tmp = tmp_path_factory.mktemp("backends")
    duck, influx = DuckDBQuery(path=store), InfluxQuery(url=url, database=db)
    a = create_app(api_settings(), backend=duck, registry=Registry(tmp / "a.sqlite"))
    b = create_app(api_settings(), backend=influx, registry=Registry(tmp / "b.sqlite"))
    with TestClient(a) as ca, TestClient(b) as cb:
        yield ca, cb
    duck.close()
    influx.close()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/coverage/cells", {"limit": 5000}),
        ("/api/v1/coverage/cells", {"park": "p1", "operator": "Alpha", "tech": "LTE", "limit": 5000}),
        ("/api/v1/coverage/dead-zones", {}),
        ("/api/v1/coverage/gaps", {"limit": 5000}),
        ("/api/v1/coverage/summary", {}),
        ("/api/v1/coverage/dead-zones", {"park": "p1", "operator": "aLPHA", "tech": "LTE"}),
        ("/api/v1/coverage/summary", {"operator": "beta"}),
        ("/api/v1/coverage/operators", {}),
        ("/api/v1/operators", {}),
        (
            "/api/v1/coverage/dead-zones",
            {"park": "p1", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
        ),
        ("/api/v1/broadband/summary", {}),
        ("/api/v1/factory/oee", {"level": "machine"}),
        ("/api/v1/factory/energy", {"level": "meter"}),
        ("/api/v1/gateways", {}),
    ],
)
def test_same_json(clients: tuple[TestClient, TestClient], path: str, params: dict[str, object]) -> None:
    duck, influx = clients
    ra = duck.get(path, params={**WINDOW, **params}, headers=headers("admin"))
    rb = influx.get(path, params={**WINDOW, **params}, headers=headers("admin"))
    assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
    assert ra.json() == rb.json()


def test_alarms_same_on_both_backends(clients: tuple[TestClient, TestClient]) -> None:
    duck, influx = clients
    t0_ms = int(T0.timestamp() * 1000)
    got = []
    for c in (duck, influx):
        engine = c.app.state.alarm_engine  # type: ignore[attr-defined]
        for t in (t0_ms + 1_280_000, t0_ms + 1_300_000, int(time.time() * 1000)):
            engine.evaluate(t)
        items = c.get("/api/v1/alarms", headers=headers("admin")).json()["items"]
        got.append(sorted((a["rule_id"], a["park"], a["source"], a["state"], a["raised_at"]) for a in items))
    assert got[0] == got[1] and len(got[0]) >= 4
