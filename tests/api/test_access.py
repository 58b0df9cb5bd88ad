"""Access control on every endpoint: no key, a wrong key, another park's key, a too-weak role."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import WINDOW, headers

# (method, path, query, body, minimum role)
ENDPOINTS: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, str]] = [
    ("GET", "/api/v1/coverage/cells", WINDOW, None, "viewer"),
    ("GET", "/api/v1/coverage/dead-zones", WINDOW, None, "viewer"),
    ("GET", "/api/v1/coverage/gaps", WINDOW, None, "viewer"),
    ("GET", "/api/v1/coverage/summary", WINDOW, None, "viewer"),
    ("GET", "/api/v1/broadband/summary", WINDOW, None, "viewer"),
    ("GET", "/api/v1/factory/machines", WINDOW, None, "viewer"),
    ("GET", "/api/v1/factory/oee", WINDOW, None, "viewer"),
    ("GET", "/api/v1/factory/energy", WINDOW, None, "viewer"),
    ("GET", "/api/v1/alarms", WINDOW, None, "viewer"),
    ("GET", "/api/v1/gateways", {}, None, "viewer"),
    ("GET", "/api/v1/gateways/gw-1", {}, None, "viewer"),
    ("GET", "/api/v1/export/cells", {**WINDOW, "format": "csv"}, None, "planner"),
    ("GET", "/api/v1/export/dead-zones", {**WINDOW, "format": "kml"}, None, "planner"),
    ("POST", "/api/v1/gateways", {}, {"park": "p1", "gw": "gw-new"}, "engineer"),
    ("POST", "/api/v1/gateways/gw-1/credentials", {"park": "p1"}, None, "engineer"),
    ("GET", "/api/v1/provisioning/mosquitto/passwd", {}, None, "admin"),
    ("GET", "/api/v1/provisioning/mosquitto/acl", {}, None, "admin"),
    ("POST", "/api/v1/provisioning/services/parkwatch-ingest", {}, None, "admin"),
    ("POST", "/api/v1/keys", {}, {"name": "new", "role": "viewer"}, "admin"),
    ("GET", "/api/v1/keys", {}, None, "admin"),
]
IDS = [f"{m} {p}" for m, p, *_ in ENDPOINTS]
WEAKER = {"viewer": None, "planner": "viewer-p1", "engineer": "planner-p1", "admin": "engineer-p1"}
PARK_SCOPED = {
    "/api/v1/provisioning/mosquitto/passwd",
    "/api/v1/provisioning/mosquitto/acl",
    "/api/v1/provisioning/services/parkwatch-ingest",
    "/api/v1/keys",
}


def call(
    client: TestClient, method: str, path: str, query: dict[str, Any], body: Any, hdrs: dict[str, str]
) -> Any:
    return client.request(method, path, params=query, json=body, headers=hdrs)


def _error(resp: Any, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "query", "body", "role"), ENDPOINTS, ids=IDS)
def test_no_key_and_wrong_key_are_401(
    client: TestClient, method: str, path: str, query: dict[str, Any], body: Any, role: str
) -> None:
    _error(call(client, method, path, query, body, {}), 401)
    _error(call(client, method, path, query, body, {"X-API-Key": "pwk_not-a-real-key"}), 401)
    _error(call(client, method, path, query, body, {"Authorization": "Bearer pwk_not-a-real-key"}), 401)


ROLE_GATED = [e for e in ENDPOINTS if WEAKER[e[4]] is not None]
PARKS_APPLY = [e for e in ENDPOINTS if e[1] not in PARK_SCOPED]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "role"), ROLE_GATED, ids=[f"{m} {p}" for m, p, *_ in ROLE_GATED]
)
def test_too_weak_role_is_403(
    client: TestClient, method: str, path: str, query: dict[str, Any], body: Any, role: str
) -> None:
    weaker = WEAKER[role]
    assert weaker is not None
    _error(call(client, method, path, query, body, headers(weaker)), 403)


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "role"), PARKS_APPLY, ids=[f"{m} {p}" for m, p, *_ in PARKS_APPLY]
)
def test_other_parks_key_is_refused(
    client: TestClient, method: str, path: str, query: dict[str, Any], body: Any, role: str
) -> None:
    """A key of park p2 with a sufficient role asking for park p1 (admin scoping: test_admin_scope.py)."""
    other = "engineer-p2" if role in ("engineer", "planner") else "viewer-p2"
    q = dict(query)
    b = dict(body) if body else None
    if b is not None:
        b["park"] = "p1"
    else:
        q["park"] = "p1"
    _error(call(client, method, path, q, b, headers(other)), 403)


def test_a_key_never_sees_another_parks_data(client: TestClient) -> None:
    cells = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "limit": 5000}, headers=headers("viewer-p2")
    ).json()
    assert cells["total"] > 0 and {f["properties"]["park"] for f in cells["features"]} == {"p2"}
    gws = client.get("/api/v1/gateways", headers=headers("viewer-p2")).json()["items"]
    assert {g["park"] for g in gws} == {"p2"}
    bb = client.get("/api/v1/broadband/summary", params=WINDOW, headers=headers("viewer-p2")).json()["items"]
    assert bb == []
    resp = client.get("/api/v1/gateways/gw-1", headers=headers("viewer-p2"))
    _error(resp, 404)
    oee = client.get("/api/v1/factory/oee", params=WINDOW, headers=headers("viewer-p2")).json()
    assert oee["items"] == []
    client.app.state.alarm_engine.evaluate(int(time.time() * 1000))  # type: ignore[attr-defined]
    alarms = client.get("/api/v1/alarms", headers=headers("viewer-p2")).json()["items"]
    assert alarms and {a["park"] for a in alarms} == {"p2"}
    all_cells = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "limit": 5000}, headers=headers("admin")
    ).json()
    assert {f["properties"]["park"] for f in all_cells["features"]} == {"p1", "p2"}


def test_public_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"backend": "ok", "registry": "ok"}
    client.get("/api/v1/gateways")
    text = client.get("/metrics").text
    assert re.search(
        r'parkwatch_api_requests_total\{method="GET",route="/api/v1/gateways",status="401"\} [1-9]', text
    )
