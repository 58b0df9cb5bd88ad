"""An API over a real DuckDB file with the test data set, and keys of every role and park scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import key_hash
from api.registry import Registry
from settings.api import ApiSettings
from settings.loader import settings_from_dict
from storage.query_duckdb import DuckDBQuery
from tests.api.data import dataset, load_duckdb

KEYS = {
    "admin": ("admin", []),
    "engineer-p1": ("engineer", ["p1"]),
    "planner-p1": ("planner", ["p1"]),
    "viewer-p1": ("viewer", ["p1"]),
    "viewer-p2": ("viewer", ["p2"]),
    "engineer-p2": ("engineer", ["p2"]),
}
WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z"}
P1_BOUNDARY = [[106.744, 20.794], [106.756, 20.794], [106.756, 20.806], [106.744, 20.806]]


def key_of(name: str) -> str:
    return f"test-key-{name}"


def headers(name: str) -> dict[str, str]:
    return {"X-API-Key": key_of(name)}


def api_settings(**extra: object) -> ApiSettings:
    data = {
        "api": {"cache_ttl_s": 0.0},
        "keys": [
            {"name": n, "sha256": key_hash(key_of(n)), "role": role, "parks": parks}
            for n, (role, parks) in KEYS.items()
        ],
        "parks": [{"id": "p1", "name": "Park one", "boundary": P1_BOUNDARY}],
        "factory": {
            "machines": [{"park": "p1", "dev": "cnc-1", "factory": "f1", "line": "l1", "ideal_cycle_s": 9.0}],
            "meters": [{"park": "p1", "dev": "meter-1", "factory": "f1", "line": "l1"}],
        },
        # No background evaluation: tests evaluate at the times they choose.
        "alarms": {
            "evaluate_interval_s": 0,
            "rules": [
                {
                    "id": "spindle-hot",
                    "kind": "machine",
                    "field": "spindle_temp_c",
                    "op": ">",
                    "threshold": 85.0,
                    "duration_s": 60,
                    "severity": "critical",
                }
            ],
        },
        **extra,
    }
    return settings_from_dict(ApiSettings, data)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "store.duckdb"
    load_duckdb(path, dataset())
    return path


@pytest.fixture(scope="module")
def client(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app per test module (tests that write the registry use names of their own)."""
    backend = DuckDBQuery(path=store)
    registry = Registry(tmp_path_factory.mktemp("registry") / "registry.sqlite")
    app = create_app(api_settings(), backend=backend, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    backend.close()
    registry.close()
