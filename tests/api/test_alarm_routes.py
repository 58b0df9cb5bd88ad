"""Alarm API: list, acknowledge, shelve, unshelve, out of service, rules CRUD, KPIs, permissions,
and a restart of the API over the same registry file keeping every alarm's state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import api_settings, headers

ADMIN = headers("admin")


@pytest.fixture
def app_files(store: Path, tmp_path: Path) -> tuple[Path, Path]:
    return store, tmp_path / "registry.sqlite"


def _client(files: tuple[Path, Path]) -> tuple[TestClient, DuckDBQuery, Registry]:
    backend, registry = DuckDBQuery(path=files[0]), Registry(files[1])
    app = create_app(api_settings(), backend=backend, registry=registry)
    return TestClient(app, raise_server_exceptions=False), backend, registry


@pytest.fixture
def client(app_files: tuple[Path, Path]) -> Iterator[TestClient]:
    c, backend, registry = _client(app_files)
    with c:
        c.app.state.alarm_engine.evaluate(int(time.time() * 1000))  # type: ignore[attr-defined]
        yield c
    backend.close()
    registry.close()


def _alarm(c: TestClient, park: str, source: str) -> dict[str, object]:
    items = c.get("/api/v1/alarms", params={"park": park}, headers=ADMIN).json()["items"]
    (a,) = [x for x in items if x["source"] == source]
    return a  # type: ignore[no-any-return]


def test_list_filters_and_validation(client: TestClient) -> None:
    items = client.get("/api/v1/alarms", headers=ADMIN).json()["items"]
    assert {a["source"] for a in items} == {"gw-1", "gw-2", "gw-9"}
    assert set(items[0]) >= {
        "id", "rule_id", "park", "source", "priority", "state", "message", "raised_at", "cleared_at",
        "acknowledged_by", "acknowledged_at", "shelved_until", "shelve_reason",
    }  # fmt: skip
    assert client.get("/api/v1/alarms", params={"state": "open"}, headers=ADMIN).json()["total"] == 3
    assert client.get("/api/v1/alarms", params={"priority": "low"}, headers=ADMIN).json()["total"] == 0
    for bad in ({"state": "burning"}, {"priority": "urgent"}, {"park": "p1\n"}, {"rule_id": "x y"}):
        assert client.get("/api/v1/alarms", params=bad, headers=ADMIN).status_code == 422
    assert client.get("/api/v1/alarms/99999", headers=ADMIN).status_code == 404


def test_acknowledge_round_trip_and_permissions(client: TestClient) -> None:
    a = _alarm(client, "p1", "gw-1")
    url = f"/api/v1/alarms/{a['id']}/acknowledge"
    # A viewer of the park cannot acknowledge; an engineer of another park does not see it.
    assert client.post(url, json={}, headers=headers("viewer-p1")).status_code == 403
    assert client.post(url, json={}, headers=headers("planner-p1")).status_code == 403
    assert client.post(url, json={}, headers=headers("engineer-p2")).status_code == 404
    assert client.get(f"/api/v1/alarms/{a['id']}", headers=headers("viewer-p2")).status_code == 404
    p2_view = client.get("/api/v1/alarms", headers=headers("viewer-p2")).json()["items"]
    assert {x["park"] for x in p2_view} == {"p2"}
    assert (
        client.get("/api/v1/alarms", params={"park": "p1"}, headers=headers("viewer-p2")).status_code == 403
    )
    r = client.post(url, json={"comment": "crew on the way"}, headers=headers("engineer-p1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["state"], body["acknowledged_by"], body["ack_comment"]) == (
        "active_acknowledged", "engineer-p1", "crew on the way",
    )  # fmt: skip
    assert body["acknowledged_at"] is not None
    again = client.post(url, json={}, headers=headers("engineer-p1"))
    assert again.status_code == 409 and "acknowledged already" in again.json()["error"]["message"]
    assert _alarm(client, "p1", "gw-1")["state"] == "active_acknowledged"


def test_shelve_and_unshelve(client: TestClient) -> None:
    a = _alarm(client, "p1", "gw-2")
    url = f"/api/v1/alarms/{a['id']}"
    assert client.post(url + "/shelve", json={"minutes": 0, "reason": "x"}, headers=ADMIN).status_code == 422
    assert client.post(url + "/shelve", json={"minutes": 30}, headers=ADMIN).status_code == 422
    assert client.post(url + "/unshelve", headers=ADMIN).status_code == 409
    r = client.post(url + "/shelve", json={"minutes": 30, "reason": "antenna replaced today"}, headers=ADMIN)
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["shelve_reason"]) == ("shelved", "antenna replaced today")
    assert r.json()["shelved_until"] is not None
    r = client.post(url + "/unshelve", headers=ADMIN)
    assert r.json()["state"] == "active_unacknowledged" and r.json()["shelved_until"] is None
    r = client.post(url + "/out-of-service", json={"out_of_service": True}, headers=ADMIN)
    assert r.json()["state"] == "out_of_service"


def test_rules_crud_enable_disable(client: TestClient) -> None:
    rules = client.get("/api/v1/alarm-rules", headers=ADMIN).json()
    assert {r["id"] for r in rules["items"]} == {"spindle-hot", "machine_fault", "gateway_offline"}
    assert rules["broken"] == {}
    new = {"id": "temp-p1", "type": "threshold", "kind": "machine", "field": "spindle_temp_c", "threshold": 70,
           "deadband": 3, "duration_s": 120, "priority": "high", "park": "p1"}  # fmt: skip
    assert client.post("/api/v1/alarm-rules", json=new, headers=headers("viewer-p1")).status_code == 403
    assert client.post("/api/v1/alarm-rules", json=new, headers=headers("engineer-p2")).status_code == 403
    r = client.post("/api/v1/alarm-rules", json=new, headers=headers("engineer-p1"))
    assert r.status_code == 201, r.text
    assert r.json()["rule"]["deadband"] == 3 and r.json()["origin"] == "api"
    assert client.post("/api/v1/alarm-rules", json=new, headers=ADMIN).status_code == 409
    bad = {**new, "id": "bad", "field": "state"}
    r = client.post("/api/v1/alarm-rules", json=bad, headers=ADMIN)
    assert r.status_code == 422 and "numeric field" in r.json()["error"]["message"]
    r = client.post("/api/v1/alarm-rules", json={**new, "id": "bad2", "type": "explode"}, headers=ADMIN)
    assert r.status_code == 422
    # An all-parks rule needs an all-parks key.
    r = client.post(
        "/api/v1/alarm-rules", json={**new, "id": "all", "park": ""}, headers=headers("engineer-p1")
    )
    assert r.status_code == 403
    r = client.put(
        "/api/v1/alarm-rules/temp-p1", json={**new, "threshold": 75}, headers=headers("engineer-p1")
    )
    assert r.status_code == 200 and r.json()["rule"]["threshold"] == 75
    r = client.post("/api/v1/alarm-rules/temp-p1/disable", headers=headers("engineer-p1"))
    assert r.json()["enabled"] is False
    assert client.get("/api/v1/alarm-rules/temp-p1", headers=headers("viewer-p2")).status_code == 404
    assert client.delete("/api/v1/alarm-rules/temp-p1", headers=headers("engineer-p1")).status_code == 204
    assert client.get("/api/v1/alarm-rules/temp-p1", headers=ADMIN).status_code == 404


def test_disabling_the_offline_rule_clears_its_alarms(client: TestClient) -> None:
    assert client.post("/api/v1/alarm-rules/gateway_offline/disable", headers=ADMIN).status_code == 200
    client.app.state.alarm_engine.evaluate(int(time.time() * 1000))  # type: ignore[attr-defined]
    states = {a["state"] for a in client.get("/api/v1/alarms", headers=ADMIN).json()["items"]}
    assert states == {"cleared_unacknowledged"}


def test_kpis_endpoint(client: TestClient) -> None:
    k = client.get("/api/v1/alarms/kpis", headers=ADMIN).json()
    assert k["activations"] == 3 and k["priority_distribution"]["high"] == 1.0
    assert k["flood_share"] == 0.0 and k["chattering"] == []
    p2 = client.get("/api/v1/alarms/kpis", params={"park": "p2"}, headers=headers("viewer-p2")).json()
    assert p2["activations"] == 1 and p2["parks"] == ["p2"]
    assert (
        client.get("/api/v1/alarms/kpis", params={"park": "p1"}, headers=headers("viewer-p2")).status_code
        == 403
    )
    r = client.get(
        "/api/v1/alarms/kpis",
        params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert r.status_code == 422


def test_a_restarted_api_keeps_alarm_state(app_files: tuple[Path, Path]) -> None:
    c, backend, registry = _client(app_files)
    with c:
        c.app.state.alarm_engine.evaluate(int(time.time() * 1000))  # type: ignore[attr-defined]
        a = _alarm(c, "p2", "gw-9")
        assert c.post(f"/api/v1/alarms/{a['id']}/acknowledge", json={}, headers=ADMIN).status_code == 200
        c.post(f"/api/v1/alarms/{a['id']}/shelve", json={"minutes": 60, "reason": "storm"}, headers=ADMIN)
        r = c.post("/api/v1/alarm-rules/spindle-hot/disable", headers=ADMIN)
        assert r.status_code == 200
    backend.close()
    registry.close()
    c2, backend2, registry2 = _client(app_files)  # a new app, new connections, the same files
    with c2:
        b = c2.get(f"/api/v1/alarms/{a['id']}", headers=ADMIN).json()
        assert (b["state"], b["acknowledged_by"], b["shelve_reason"]) == ("shelved", "admin", "storm")
        assert c2.get("/api/v1/alarm-rules/spindle-hot", headers=ADMIN).json()["enabled"] is False
    backend2.close()
    registry2.close()


def test_kpis_endpoint_on_the_hand_computed_day(client: TestClient) -> None:
    from storage.alarm_store import AlarmEvent
    from tests.analytics.test_alarm_kpis import ACTS

    store = client.app.state.alarm_engine.store  # type: ignore[attr-defined]
    day0 = 1_798_761_600_000  # 2027-01-01T00:00Z: a day with no other alarms
    for i, a in enumerate(ACTS):
        store.log_event(
            AlarmEvent(alarm_id=1000 + i, rule_id=a.rule_id, park=a.park, source=a.source, priority=a.priority,
                       kind="activated", state="active_unacknowledged", at_ms=day0 + a.at_ms, actor="", detail="")
        )  # fmt: skip
    k = client.get(
        "/api/v1/alarms/kpis",
        params={"from": "2027-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"},
        headers=ADMIN,
    ).json()
    assert (k["activations"], k["alarms_per_day"], k["alarms_per_10min_max"]) == (19, 19.0, 12)
    assert k["flood_share"] == pytest.approx(1 / 144)
    assert [c["source"] for c in k["chattering"]] == ["c1"]
    assert k["top10_share"] == pytest.approx(14 / 19)
    assert k["priority_distribution"]["low"] == pytest.approx(12 / 19)
    assert client.get("/api/v1/alarms/kpis", params={"from": "2027-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"},
                      headers=headers("viewer-p2")).json()["activations"] == 0  # fmt: skip
