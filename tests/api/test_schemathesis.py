"""Property-based requests over the OpenAPI schema: no input makes the API answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import api_settings, headers


@pytest.fixture(scope="module")
def api_schema(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    backend = DuckDBQuery(path=store)
    registry = Registry(tmp_path_factory.mktemp("schemathesis") / "registry.sqlite")
    app = create_app(api_settings(), backend=backend, registry=registry)
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    backend.close()
    registry.close()


# The live stream is Server-Sent Events, not request/response: tests/demo drives it in a browser.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/stream")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: schemathesis.Case) -> None:
    # As admin, so that generated requests get past access control into the query code.
    response = case.call(headers=headers("admin"))
    case.validate_response(response, checks=[not_a_server_error])
