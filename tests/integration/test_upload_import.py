"""A planner uploads a drive-test file through the API; the running ingester imports it.

``POST /api/v1/imports`` → the job is queued in the registry → a running ``parkwatch ingest``
(real Mosquitto, DuckDB file or real InfluxDB) claims it and stores it through its own sink →
``GET /api/v1/imports/{id}`` reports it done → ``/api/v1/coverage/dead-zones`` shows the survey's
known hole (tests/surveys/gnettrack_survey.csv: 7 cells at -121..-129 dBm in a ring of good ones;
the truth is the file's). Uploading the same file again stores nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import key_hash
from api.cli import build_backend
from api.registry import Registry
from settings import settings_from_dict
from settings.api import ApiSettings
from tests.ingest.helpers import influx_count, ingest_settings, running, wait_until
from tests.integration.test_bring_your_own_data import BOUNDARY, HOLE, SURVEY
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

WINDOW = {"from": "2026-08-14T00:00:00Z", "to": "2026-08-15T00:00:00Z"}


@pytest.fixture(params=["duckdb", "influxdb"])
def backend_kind(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any]]]:
    if request.param == "duckdb":
        yield "duckdb", {}
    else:
        server: ServerProcess = request.getfixturevalue("influxdb")
        yield (
            "influxdb",
            {"url": f"http://127.0.0.1:{server.port}", "database": f"pw_up_{uuid.uuid4().hex[:8]}"},
        )


async def test_an_uploaded_survey_is_imported_by_the_running_ingester(
    backend_kind: tuple[str, dict[str, Any]], mosquitto: ServerProcess, topic_root: str, tmp_path: Path
) -> None:
    kind, influx = backend_kind
    registry_path = str(tmp_path / "registry.sqlite")
    if kind == "duckdb":
        db = str(tmp_path / "coverage.duckdb")
        sink: dict[str, Any] = {"type": "duckdb", "path": db, "retention_days": 0}
        backend: dict[str, Any] = {"type": "duckdb", "path": db}
    else:
        sink = {"type": "influxdb", **influx}
        backend = {"type": "influxdb", **influx}
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{uuid.uuid4().hex[:6]}",
        sink=sink,
        tmp=tmp_path,
        registry_path=registry_path,
        registry_refresh_s=0.2,
        import_poll_s=0.1,
        refuse_unknown="parks",
    )
    api = settings_from_dict(
        ApiSettings,
        {
            "api": {"registry_path": registry_path, "cache_ttl_s": 0.0},
            "backend": backend,
            "keys": [
                {"name": "planner", "sha256": key_hash("planner-key-0123456789abcdef"), "role": "planner"},
                {"name": "viewer", "sha256": key_hash("viewer-key-0123456789abcdefgh"), "role": "viewer"},
                {"name": "admin", "sha256": key_hash("admin-key-0123456789abcdefghij"), "role": "admin"},
            ],
        },
    )
    planner = {"X-API-Key": "planner-key-0123456789abcdef"}
    data = SURVEY.read_bytes()
    upload = {
        "park": "hd-new",
        "mapping": "gnettrack",
        "filename": SURVEY.name,
        "timezone": "Asia/Ho_Chi_Minh",
    }
    store = build_backend(api) if kind == "influxdb" else None
    registry = Registry(registry_path)
    try:
        with TestClient(create_app(api, backend=store or _LazyDuckdb(api), registry=registry)) as client:
            # An unknown park is refused at upload, with what to do next.
            missing = client.post("/api/v1/imports", params=upload, content=data, headers=planner)
            assert missing.status_code == 404 and "PUT /api/v1/parks/hd-new" in missing.text
            made = client.put(
                "/api/v1/parks/hd-new",
                json={"name": "Hai Duong new area", "boundary": BOUNDARY, "timezone": "Asia/Ho_Chi_Minh"},
                headers={"X-API-Key": "admin-key-0123456789abcdefghij"},
            )
            assert made.status_code in (200, 201), made.text
            denied = client.post(
                "/api/v1/imports",
                params=upload,
                content=data,
                headers={"X-API-Key": "viewer-key-0123456789abcdefgh"},
            )
            assert denied.status_code == 403
            async with running(settings) as ing:
                jobs = []
                for _ in range(2):  # the same file twice: stored once
                    sent = client.post("/api/v1/imports", params=upload, content=data, headers=planner)
                    assert sent.status_code == 202, sent.text
                    assert sent.json()["status"] == "queued" and sent.json()["rows"] == 117
                    jobs.append(sent.json()["id"])

                def finished() -> bool:
                    states = [
                        client.get(f"/api/v1/imports/{j}", headers=planner).json()["status"] for j in jobs
                    ]
                    return all(s in ("done", "failed") for s in states)

                await wait_until(finished, 60, "both uploads imported")
                reports = [client.get(f"/api/v1/imports/{j}", headers=planner).json() for j in jobs]
                if kind == "influxdb":
                    stored = await influx_count(
                        int(influx["url"].rsplit(":", 1)[1]), influx["database"], "cellular"
                    )
            if store is None:
                store = build_backend(api)  # the ingester released the DuckDB file
            with TestClient(create_app(api, backend=store, registry=registry)) as reader:
                answer = reader.get(
                    "/api/v1/coverage/dead-zones", params={"park": "hd-new", **WINDOW}, headers=planner
                )
                listed = reader.get("/api/v1/imports", params={"park": "hd-new"}, headers=planner)
    finally:
        registry.close()
        if store is not None:
            store.close()
    for report in reports:
        assert report["status"] == "done", report
        assert (report["report"]["rows"], report["report"]["stored"], report["report"]["h3_cells"]) == (
            117,
            115,
            19,
        )
        assert report["report"]["refused"] == {"malformed:ts": 1, "position": 1}, report["report"]
    assert ing.metrics.loop_errors["imports"] == 0
    if kind == "influxdb":
        assert stored == 115  # the second upload overwrote the same points
    assert answer.status_code == 200, answer.text
    (zone,) = answer.json()["features"]
    assert set(zone["properties"]["cells"]) == HOLE
    assert [j["id"] for j in listed.json()["items"]] == jobs[::-1]


class _LazyDuckdb:
    """Stands in for the query backend while the ingester holds the DuckDB file (no reads then)."""

    def __init__(self, api: ApiSettings) -> None:
        self.api = api

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the API read the store ({name}) while the ingester held the DuckDB file")


def test_upload_parameters_are_checked(tmp_path: Path) -> None:
    registry_path = str(tmp_path / "registry.sqlite")
    api = settings_from_dict(
        ApiSettings,
        {
            "api": {"registry_path": registry_path, "import_max_mb": 0.001},
            "backend": {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
            "keys": [
                {"name": "admin", "sha256": key_hash("admin-key-0123456789abcdefghij"), "role": "admin"}
            ],
            "parks": [{"id": "p1", "name": "P1", "boundary": [[106.0, 20.0], [106.1, 20.0], [106.1, 20.1]]}],
        },
    )
    key = {"X-API-Key": "admin-key-0123456789abcdefghij"}
    registry = Registry(registry_path)
    try:
        with TestClient(create_app(api, backend=_LazyDuckdb(api), registry=registry)) as client:
            ok = {"park": "p1", "filename": "a.csv"}
            bad = [
                ({**ok, "mapping": "../etc/passwd"}, b"lat,lon\n1,2\n", 422, "not one of"),
                ({**ok, "timezone": "Mars/Olympus"}, b"lat,lon\n1,2\n", 422, "time zone"),
                ({**ok, "filename": "a.csv\n"}, b"lat,lon\n1,2\n", 422, "filename"),
                ({**ok, "park": "p1\n"}, b"lat,lon\n1,2\n", 422, "park"),
                (ok, b"", 422, "empty"),
                (ok, b"x" * 2000, 413, "import_max_mb"),
                ({**ok, "filename": "a.geojson"}, b"{not json", 422, "a.geojson"),
            ]
            for params, body, status, text in bad:
                got = client.post("/api/v1/imports", params=params, content=body, headers=key)
                assert got.status_code == status, (params, got.text)
                assert text in got.text, got.text
            assert client.get("/api/v1/imports/imp-zz", headers=key).status_code == 422
            assert client.get("/api/v1/imports/imp-0123456789ab", headers=key).status_code == 404
    finally:
        registry.close()
