"""A park-limited admin key manages only what lies inside its parks.

Each escalation path of a key limited to park p1 is refused with 403 and a message, and leaves
the registry as it was: an all-parks key, a key for another park, the ingesters' broker password.
Reads (broker files, key list) are narrowed to its parks. An all-parks admin keeps every power.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import mosquitto
from api.app import create_app
from api.auth import Principal, key_hash
from api.errors import Forbidden
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import KEYS, api_settings, headers, key_of

SCOPED_KEYS = {**KEYS, "admin-p1": ("admin", ["p1"]), "admin-p1p3": ("admin", ["p1", "p3"])}
ADMIN_P1 = headers("admin-p1")
ADMIN = headers("admin")
INGEST_USER = "parkwatch-ingest"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry.sqlite")
    for park, gw in (("p1", "gw-own"), ("p2", "gw-other")):
        reg.add_gateway(
            park=park,
            gw=gw,
            description="",
            username=mosquitto.gateway_username(park, gw),
            password_hash=mosquitto.hash_password(f"pw-{gw}"),
        )
    reg.set_service(username=INGEST_USER, password_hash=mosquitto.hash_password("ingest-secret"))
    reg.add_key(sha256=key_hash("reg-all"), name="reg-all-parks", role="viewer", parks=())
    reg.add_key(sha256=key_hash("reg-p1"), name="reg-p1", role="viewer", parks=("p1",))
    reg.add_key(sha256=key_hash("reg-p2"), name="reg-p2", role="engineer", parks=("p2",))
    yield reg
    reg.close()


@pytest.fixture
def client(store: Path, registry: Registry) -> Iterator[TestClient]:
    keys = [
        {"name": n, "sha256": key_hash(key_of(n)), "role": role, "parks": parks}
        for n, (role, parks) in SCOPED_KEYS.items()
    ]
    backend = DuckDBQuery(path=store)
    app = create_app(api_settings(keys=keys), backend=backend, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    backend.close()


def _snapshot(registry: Registry) -> tuple[Any, ...]:
    return (registry.api_keys(), registry.gateways(), registry.services())


def _forbidden(resp: Any, *words: str) -> str:
    assert resp.status_code == 403, resp.text
    message: str = resp.json()["error"]["message"]
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "root", "role": "admin"}, ("all parks", "p1")),
        ({"name": "root", "role": "admin", "parks": []}, ("all parks",)),
        ({"name": "spy", "role": "viewer", "parks": ["p2"]}, ("p2", "limited to p1")),
        ({"name": "wide", "role": "engineer", "parks": ["p1", "p2"]}, ("p2",)),
    ],
    ids=["all-parks-admin", "explicit-empty-parks", "other-park", "own-and-other-park"],
)
def test_limited_admin_cannot_create_keys_beyond_its_parks(
    client: TestClient, registry: Registry, body: dict[str, Any], words: tuple[str, ...]
) -> None:
    before = _snapshot(registry)
    _forbidden(client.post("/api/v1/keys", json=body, headers=ADMIN_P1), *words)
    assert _snapshot(registry) == before


def test_limited_admin_creates_keys_within_its_parks(client: TestClient, registry: Registry) -> None:
    resp = client.post(
        "/api/v1/keys", json={"name": "deputy", "role": "admin", "parks": ["p1"]}, headers=ADMIN_P1
    )
    assert resp.status_code == 201, resp.text
    wide = client.post(
        "/api/v1/keys", json={"name": "p1-only", "parks": ["p1"]}, headers=headers("admin-p1p3")
    )
    assert wide.status_code == 201, wide.text
    made = {k.name: k.parks for k in registry.api_keys()}
    assert made["deputy"] == ("p1",) and made["p1-only"] == ("p1",)
    # The new deputy is bound by the same rule.
    deputy = {"X-API-Key": resp.json()["key"]}
    _forbidden(client.post("/api/v1/keys", json={"name": "x", "role": "admin"}, headers=deputy), "all parks")


def test_limited_admin_cannot_reset_service_accounts(client: TestClient, registry: Registry) -> None:
    before = _snapshot(registry)
    for user in (INGEST_USER, "parkwatch-ingest-9"):
        resp = client.post(f"/api/v1/provisioning/services/{user}", headers=ADMIN_P1)
        _forbidden(resp, "all parks", "service accounts")
        assert "password" not in resp.json()
    assert _snapshot(registry) == before
    # The old ingest password still verifies: nothing was re-keyed.
    assert mosquitto.verify_password("ingest-secret", dict(registry.services())[INGEST_USER])


def test_limited_admin_reads_broker_entries_of_its_parks_only(client: TestClient) -> None:
    passwd = client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN_P1)
    assert passwd.status_code == 200
    users = [line.split(":", 1)[0] for line in passwd.text.splitlines()]
    assert users == ["p1/gw-own"]
    acl = client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN_P1).text
    assert "user p1/gw-own" in acl
    assert "p2" not in acl and INGEST_USER not in acl
    # The all-parks admin gets the whole files, service accounts included.
    full = client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    assert sorted(line.split(":", 1)[0] for line in full.splitlines()) == [
        "p1/gw-own",
        "p2/gw-other",
        INGEST_USER,
    ]
    assert f"user {INGEST_USER}" in client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN).text


def test_limited_admin_lists_only_keys_within_its_parks(client: TestClient) -> None:
    items = client.get("/api/v1/keys", headers=ADMIN_P1).json()["items"]
    names = {k["name"] for k in items}
    assert names == {"reg-p1", "engineer-p1", "planner-p1", "viewer-p1", "admin-p1"}
    assert all(k["parks"] and set(k["parks"]) <= {"p1"} for k in items)
    everything = {k["name"] for k in client.get("/api/v1/keys", headers=ADMIN).json()["items"]}
    assert {"reg-all-parks", "reg-p2", "admin", "viewer-p2", "admin-p1p3"} <= everything


def test_all_parks_admin_keeps_every_power(client: TestClient, registry: Registry) -> None:
    created = client.post("/api/v1/keys", json={"name": "root-2", "role": "admin"}, headers=ADMIN)
    assert created.status_code == 201 and created.json()["parks"] == []
    reset = client.post(f"/api/v1/provisioning/services/{INGEST_USER}", headers=ADMIN)
    assert reset.status_code == 200
    assert mosquitto.verify_password(reset.json()["password"], dict(registry.services())[INGEST_USER])


@pytest.mark.parametrize(
    ("role", "parks", "grant_role", "grant_parks", "allowed"),
    [
        ("engineer", None, "admin", (), False),
        ("engineer", None, "engineer", (), True),
        ("admin", frozenset({"p1"}), "viewer", ("p1",), True),
        ("admin", frozenset({"p1"}), "viewer", (), False),
        ("admin", frozenset({"p1", "p2"}), "planner", ("p2", "p1"), True),
        ("admin", frozenset({"p1"}), "planner", ("p1", "p2"), False),
        ("planner", frozenset({"p1"}), "engineer", ("p1",), False),
    ],
)
def test_grant_rule(
    role: Any, parks: frozenset[str] | None, grant_role: Any, grant_parks: tuple[str, ...], allowed: bool
) -> None:
    p = Principal(name="k", role=role, parks=parks)
    if allowed:
        p.require_grant(grant_role, grant_parks)
    else:
        with pytest.raises(Forbidden):
            p.require_grant(grant_role, grant_parks)
    assert p.covers(grant_parks) == (parks is None or (bool(grant_parks) and set(grant_parks) <= parks))
