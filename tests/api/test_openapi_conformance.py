"""The OpenAPI document says what the API does: the enforced ``limit`` bound, the GeoJSON and export
media types, the 404/409/400 answers, and 405 with ``Allow``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.exports import MEDIA_TYPES
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import WINDOW, api_settings, headers

ADMIN = headers("admin")
GEOJSON_PATHS = ["/api/v1/coverage/cells", "/api/v1/coverage/dead-zones", "/api/v1/coverage/gaps"]


@pytest.fixture(scope="module")
def small_pages(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An API whose ``max_page_size`` (50) is below the endpoints' usual defaults."""
    backend = DuckDBQuery(path=store)
    registry = Registry(tmp_path_factory.mktemp("registry") / "registry.sqlite")
    app = create_app(
        api_settings(api={"cache_ttl_s": 0.0, "max_page_size": 50}), backend=backend, registry=registry
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    backend.close()
    registry.close()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _limit_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    for p in op.get("parameters", []):
        if p["name"] == "limit":
            schema: dict[str, Any] = p["schema"]
            return schema
    return None


@pytest.mark.parametrize(("fixture", "max_page"), [("client", 5000), ("small_pages", 50)])
def test_documented_limit_is_the_enforced_one(
    fixture: str, max_page: int, request: pytest.FixtureRequest
) -> None:
    client: TestClient = request.getfixturevalue(fixture)
    spec = client.get("/openapi.json").json()
    paged = [(path, _limit_schema(op)) for path, method, op in _operations(spec) if _limit_schema(op)]
    assert len(paged) >= 8
    for path, schema in paged:
        assert schema is not None
        assert schema["maximum"] == max_page, path
        assert schema["minimum"] == 1
        assert schema["default"] <= max_page
        assert client.get(path, params={**WINDOW, "limit": max_page}, headers=ADMIN).status_code == 200, path
        over = client.get(path, params={**WINDOW, "limit": max_page + 1}, headers=ADMIN)
        assert over.status_code == 422, path
        assert (
            over.json()["error"]["message"]
            == f"query.limit: Input should be less than or equal to {max_page}"
        )
        # The default page is within the bound too (FastAPI does not check defaults).
        assert client.get(path, params=WINDOW, headers=ADMIN).json()["limit"] <= max_page


def test_geojson_answers_are_declared_as_geojson(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in GEOJSON_PATHS:
        responses = spec["paths"][path]["get"]["responses"]
        assert set(responses["200"]["content"]) == {"application/geo+json"}, path
        for status in ("401", "403", "422", "503"):
            assert set(responses[status]["content"]) == {"application/json"}, (path, status)
        answer = client.get(path, params=WINDOW, headers=ADMIN)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/geo+json"
        assert answer.json()["type"] == "FeatureCollection"
        refused = client.get(path, params={"limit": 0}, headers=ADMIN)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/json"


def test_export_media_types_are_declared(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/export/cells", "/api/v1/export/dead-zones"):
        declared = set(spec["paths"][path]["get"]["responses"]["200"]["content"])
        assert declared == set(MEDIA_TYPES.values()), path
        for fmt, media_type in MEDIA_TYPES.items():
            answer = client.get(path, params={**WINDOW, "format": fmt}, headers=ADMIN)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == media_type


def test_404_409_and_400_are_declared_where_they_are_answered(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "404" in paths["/api/v1/gateways/{gw}"]["get"]["responses"]
    assert "404" in paths["/api/v1/gateways/{gw}/credentials"]["post"]["responses"]
    assert {"409", "400"} <= set(paths["/api/v1/gateways"]["post"]["responses"])
    assert "400" in paths["/api/v1/keys"]["post"]["responses"]
    assert client.get("/api/v1/gateways/gw-nowhere", headers=ADMIN).status_code == 404
    assert client.post("/api/v1/gateways/gw-nowhere/credentials?park=p1", headers=ADMIN).status_code == 404
    body = {"park": "p1", "gw": "gw-conformance"}
    assert client.post("/api/v1/gateways", json=body, headers=ADMIN).status_code == 201
    again = client.post("/api/v1/gateways", json=body, headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_405_names_the_allowed_methods(client: TestClient) -> None:
    answer = client.delete("/api/v1/keys", headers=ADMIN)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} == {"GET", "POST"}
    assert answer.json()["error"]["code"] == "method_not_allowed"
    put = client.put("/api/v1/coverage/cells", headers=ADMIN)
    assert put.status_code == 405
    assert {m.strip() for m in put.headers["allow"].split(",")} == {"GET"}


def test_every_success_answer_of_every_path_has_a_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    answers = [
        (path, method, status, media, body.get("schema"))
        for path, method, op in _operations(spec)
        for status, answer in op["responses"].items()
        if status.startswith("2")
        for media, body in answer.get("content", {}).items()
    ]
    assert len({(path, method) for path, method, *_ in answers}) >= 25
    for path, method, status, media, schema in answers:
        assert schema, (path, method, status, media)
        ref = schema.get("$ref", "")
        if ref:
            assert ref.removeprefix("#/components/schemas/") in components, ref
    # The read answers are documented field by field, not as a bare object.
    gateway = components["Gateway"]
    assert {"park", "gw", "last_seen_ms", "online"} <= set(gateway["required"])
    assert components["AlarmPage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/AlarmInstance"
    }
