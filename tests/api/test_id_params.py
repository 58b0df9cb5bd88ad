"""Ids and names in the API's query, path and body parameters are matched whole: a control
character anywhere (also a trailing ``%0A``) is a 422 with a message, never a 503 from the
database, and provisioning writes nothing for a refused name. Valid ids pass validation."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import mosquitto
from api.app import create_app
from api.registry import Registry
from contract.ids import ID, KEY_NAME, NAME
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import api_settings, headers
from tests.contract.id_strategies import corrupted, valid

ADMIN = headers("admin")
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def app_and_registry(
    store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Registry]]:
    backend = DuckDBQuery(path=store)
    registry = Registry(tmp_path_factory.mktemp("registry") / "registry.sqlite")
    app = create_app(api_settings(), backend=backend, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, registry
    backend.close()
    registry.close()


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _refused(response: Any, where: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(where), error["message"]
    assert "should match pattern" in error["message"]


def test_park_with_a_trailing_newline_is_422(app_and_registry: tuple[TestClient, Registry]) -> None:
    client, _ = app_and_registry
    _refused(client.get("/api/v1/coverage/cells?park=park-a%0A", headers=ADMIN), "query.park")


def test_gateway_path_with_a_trailing_newline_is_422_not_503(
    app_and_registry: tuple[TestClient, Registry],
) -> None:
    client, _ = app_and_registry
    _refused(client.get("/api/v1/gateways/gw-a1%0A", headers=ADMIN), "path.gw")
    _refused(client.post("/api/v1/gateways/gw-a1%0A/credentials?park=p1", headers=ADMIN), "path.gw")


def test_service_name_with_a_newline_changes_no_broker_file(
    app_and_registry: tuple[TestClient, Registry],
) -> None:
    client, registry = app_and_registry
    assert client.post("/api/v1/provisioning/services/svc-ok", headers=ADMIN).status_code == 200
    before = client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    acl_before = client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN).text
    services_before = registry.services()
    assert "svc-ok:" in before
    for name in ("svc%0A", "svc%0D", "svc%00", "svc%0Aevil:%247%24x", "svc%E2%80%A8", "svc%0A%0A"):
        _refused(client.post(f"/api/v1/provisioning/services/{name}", headers=ADMIN), "path.username")
    assert registry.services() == services_before
    assert client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text == before
    assert client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN).text == acl_before


def test_broker_files_refuse_a_bad_name_that_got_into_the_registry(tmp_path: Path) -> None:
    # Defence in depth: a registry written before names were matched whole.
    registry = Registry(tmp_path / "old.sqlite")
    try:
        registry.set_service(username="svc\n", password_hash=mosquitto.hash_password("pw"))
        with pytest.raises(mosquitto.BrokerFileError, match="remove it from the registry"):
            mosquitto.password_file(registry.services())
    finally:
        registry.close()
    with pytest.raises(mosquitto.BrokerFileError):
        mosquitto.password_file([("svc", "$7$1$a$b\nevil:$7$1$a$b")])
    with pytest.raises(mosquitto.BrokerFileError):
        mosquitto.acl_file([], topic_root="parkwatch", ingest_username="ingest\nuser evil")
    assert (
        mosquitto.password_file([("p1/gw-1", "$7$1$a$b"), ("svc", "$7$1$c$d")])
        == "p1/gw-1:$7$1$a$b\nsvc:$7$1$c$d\n"
    )


QUERY_CASES = [
    ("/api/v1/coverage/cells", "park", ID),
    ("/api/v1/coverage/summary", "operator", NAME),
    ("/api/v1/broadband/summary", "gw", ID),
    ("/api/v1/gateways", "park", ID),
]


@HYPOTHESIS
@given(case=st.sampled_from(QUERY_CASES), data=st.data())
def test_query_ids_with_control_characters_are_422(
    app_and_registry: tuple[TestClient, Registry], case: tuple[str, str, Any], data: st.DataObject
) -> None:
    client, _ = app_and_registry
    path, name, syntax = case
    _refused(client.get(f"{path}?{name}={q(data.draw(corrupted(syntax)))}", headers=ADMIN), f"query.{name}")
    # A valid value gets past validation (the admin key may read any park): unknown parks are
    # empty, except on the coverage endpoints, where they are a 404 that says so.
    good = client.get(f"{path}?{name}={q(data.draw(valid(syntax)))}", headers=ADMIN)
    if path.startswith("/api/v1/coverage/") and name == "park" and good.status_code == 404:
        assert "unknown park" in good.json()["error"]["message"], good.text
    else:
        assert good.status_code == 200, good.text


@HYPOTHESIS
@given(data=st.data())
def test_path_and_body_ids_with_control_characters_are_422(
    app_and_registry: tuple[TestClient, Registry], data: st.DataObject
) -> None:
    client, registry = app_and_registry
    gateways_before = registry.gateways()
    bad_id = data.draw(corrupted(ID))
    good_id = data.draw(valid(ID))
    _refused(client.get(f"/api/v1/gateways/{q(bad_id)}", headers=ADMIN), "path.gw")
    assert client.get(f"/api/v1/gateways/{q(good_id)}", headers=ADMIN).status_code == 404
    _refused(
        client.post(f"/api/v1/gateways/{q(good_id)}/credentials?park={q(bad_id)}", headers=ADMIN),
        "query.park",
    )
    _refused(client.post(f"/api/v1/provisioning/services/{q(bad_id)}", headers=ADMIN), "path.username")
    _refused(client.post("/api/v1/gateways", json={"park": bad_id, "gw": "gw-1"}, headers=ADMIN), "body.park")
    _refused(client.post("/api/v1/gateways", json={"park": "p1", "gw": bad_id}, headers=ADMIN), "body.gw")
    assert registry.gateways() == gateways_before
    bad_name = data.draw(corrupted(KEY_NAME))
    _refused(client.post("/api/v1/keys", json={"name": bad_name}, headers=ADMIN), "body.name")
    refused_park = client.post("/api/v1/keys", json={"name": "k", "parks": [bad_id]}, headers=ADMIN)
    assert refused_park.status_code == 422
    assert "invalid park id" in refused_park.json()["error"]["message"]
