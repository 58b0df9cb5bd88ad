"""API keys can be revoked and have unique names; gateways can be removed — by API and command line."""

from __future__ import annotations

import shutil
import subprocess
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
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry.sqlite")
    yield reg
    reg.close()


@pytest.fixture
def client(store: Path, registry: Registry) -> Iterator[TestClient]:
    backend = DuckDBQuery(path=store)
    app = create_app(api_settings(), backend=backend, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    backend.close()


def test_a_revoked_key_is_refused_from_the_next_request(client: TestClient) -> None:
    made = client.post("/api/v1/keys", json={"name": "ops-laptop", "role": "viewer"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}
    assert client.get("/api/v1/gateways", headers=key).status_code == 200
    revoked = client.delete("/api/v1/keys/ops-laptop", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json() == {"name": "ops-laptop", "revoked": True}
    refused = client.get("/api/v1/gateways", headers=key)
    assert refused.status_code == 401, refused.text
    names = [k["name"] for k in client.get("/api/v1/keys", headers=ADMIN).json()["items"]]
    assert "ops-laptop" not in names
    again = client.delete("/api/v1/keys/ops-laptop", headers=ADMIN)
    assert again.status_code == 404 and "GET /api/v1/keys" in again.json()["error"]["message"]


def test_key_names_are_unique(client: TestClient, registry: Registry) -> None:
    assert client.post("/api/v1/keys", json={"name": "field-team"}, headers=ADMIN).status_code == 201
    dup = client.post("/api/v1/keys", json={"name": "field-team", "role": "admin"}, headers=ADMIN)
    assert dup.status_code == 409 and "field-team" in dup.json()["error"]["message"], dup.text
    # A name of the config file's keys is taken too.
    clash = client.post("/api/v1/keys", json={"name": "admin"}, headers=ADMIN)
    assert clash.status_code == 409 and "config file" in clash.json()["error"]["message"]
    assert [k.role for k in registry.api_keys() if k.name == "field-team"] == ["viewer"]


def test_config_keys_are_not_revoked_through_the_api(client: TestClient) -> None:
    answer = client.delete("/api/v1/keys/viewer-p1", headers=ADMIN)
    assert answer.status_code == 409 and "config file" in answer.json()["error"]["message"]
    assert client.get("/api/v1/gateways", headers=headers("viewer-p1")).status_code == 200


def test_revocation_needs_an_admin_who_covers_the_key(client: TestClient, registry: Registry) -> None:
    assert (
        client.post("/api/v1/keys", json={"name": "p2-viewer", "parks": ["p2"]}, headers=ADMIN).status_code
        == 201
    )
    assert client.delete("/api/v1/keys/p2-viewer", headers=headers("engineer-p1")).status_code == 403
    assert [k.name for k in registry.api_keys()] == ["p2-viewer"]


def test_a_removed_gateway_leaves_the_registry_and_the_broker_files(
    client: TestClient, registry: Registry
) -> None:
    body = {"park": "p1", "gw": "gw-9", "description": "to be scrapped"}
    assert client.post("/api/v1/gateways", json=body, headers=headers("engineer-p1")).status_code == 201
    assert "p1/gw-9:" in client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    other_park = client.delete("/api/v1/gateways/gw-9", params={"park": "p1"}, headers=headers("engineer-p2"))
    assert other_park.status_code == 403
    removed = client.delete("/api/v1/gateways/gw-9", params={"park": "p1"}, headers=headers("engineer-p1"))
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert registry.gateway("p1", "gw-9") is None
    assert "gw-9" not in client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    assert "gw-9" not in client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN).text
    gone = client.delete("/api/v1/gateways/gw-9", params={"park": "p1"}, headers=headers("engineer-p1"))
    assert gone.status_code == 404


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_revokes_keys_refuses_duplicates_and_removes_gateways(tmp_path: Path) -> None:
    config = tmp_path / "api.toml"
    config.write_text(f'[api]\nregistry_path = "{tmp_path / "reg.sqlite"}"\n')
    made = _console("api", "key-create", "--config", str(config), "--name", "night-shift")
    assert made.returncode == 0 and made.stdout.strip(), made.stderr
    dup = _console("api", "key-create", "--config", str(config), "--name", "night-shift")
    assert dup.returncode == 2 and dup.stderr.count("\n") == 1 and "night-shift" in dup.stderr, dup.stderr
    revoked = _console("api", "key-revoke", "--config", str(config), "night-shift")
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    missing = _console("api", "key-revoke", "--config", str(config), "night-shift")
    assert missing.returncode == 1 and "no key named 'night-shift'" in missing.stderr
    reg = Registry(tmp_path / "reg.sqlite")
    try:
        assert reg.api_keys() == []
        reg.add_gateway(park="p1", gw="gw-1", description="", username="p1/gw-1", password_hash="$7$x")
    finally:
        reg.close()
    removed = _console("api", "gateway-remove", "--config", str(config), "--park", "p1", "gw-1")
    assert removed.returncode == 0 and "mosquitto-files" in removed.stderr, removed.stderr
    not_there = _console("api", "gateway-remove", "--config", str(config), "--park", "p1", "gw-1")
    assert not_there.returncode == 1 and "not registered" in not_there.stderr
    for action in ("key-revoke", "gateway-remove"):
        helped = _console("api", action, "--help")
        assert helped.returncode == 0 and "regist" in helped.stdout


def test_a_revoked_key_gets_no_cached_answer(store: Path, registry: Registry) -> None:
    backend = DuckDBQuery(path=store)
    app = create_app(api_settings(api={"cache_ttl_s": 60.0}), backend=backend, registry=registry)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            key = {
                "X-API-Key": client.post("/api/v1/keys", json={"name": "temp"}, headers=ADMIN).json()["key"]
            }
            path = "/api/v1/coverage/summary"
            assert client.get(path, headers=key).status_code == 200
            cached = client.get(path, headers=key)
            assert cached.status_code == 200 and cached.headers.get("X-Cache") == "hit"
            assert client.delete("/api/v1/keys/temp", headers=ADMIN).status_code == 200
            assert client.get(path, headers=key).status_code == 401
    finally:
        backend.close()
