"""A planner's drive-test survey of a new area, from file to dead-zone map, with documented commands.

``parkwatch park create`` → ``parkwatch import`` → ``parkwatch api key-create`` →
``GET /api/v1/coverage/dead-zones``, on DuckDB and on a real InfluxDB. The survey
(tests/surveys/gnettrack_survey.csv, G-NetTrack layout, months old, local time) was written around
a known hole: the 7 H3 cells (resolution 10) of one cell and its ring, measured at -121..-129 dBm,
inside a ring of 12 cells at -82..-91 dBm. That truth is the file's, not the code's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import build_backend
from api.registry import Registry
from parkwatch.cli import main
from settings import load_settings
from settings.api import ApiSettings
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

SURVEY = Path(__file__).parents[1] / "surveys" / "gnettrack_survey.csv"
HOLE = {h3.int_to_str(c) if isinstance(c, int) else c for c in h3.grid_disk("8a415c9456b7fff", 1)}
BOUNDARY = {
    "type": "Polygon",
    "coordinates": [[[106.32, 20.93], [106.345, 20.93], [106.345, 20.95], [106.32, 20.95], [106.32, 20.93]]],
}


def _toml(table: str, values: dict[str, Any]) -> str:
    return f"[{table}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@pytest.fixture(params=["duckdb", "influxdb"])
def configs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(ingest.toml, api.toml) sharing one store and one registry file."""
    registry = str(tmp_path / "registry.sqlite")
    if request.param == "duckdb":
        db = str(tmp_path / "coverage.duckdb")
        sink: dict[str, Any] = {"type": "duckdb", "path": db, "retention_days": 0}
        backend: dict[str, Any] = {"type": "duckdb", "path": db}
    else:
        server: ServerProcess = request.getfixturevalue("influxdb")
        url, name = f"http://127.0.0.1:{server.port}", f"pw_byod_{uuid.uuid4().hex[:8]}"
        sink = {"type": "influxdb", "url": url, "database": name}
        backend = {"type": "influxdb", "url": url, "database": name}
    ingest = tmp_path / "ingest.toml"
    ingest.write_text(
        _toml("sink", sink)
        + _toml(
            "ingest",
            {
                "spool_dir": str(tmp_path / "spool"),
                "metrics_port": 0,
                "registry_path": registry,
                "refuse_unknown": "parks",
            },
        )
    )
    api = tmp_path / "api.toml"
    api.write_text(_toml("api", {"registry_path": registry, "cache_ttl_s": 0.0}) + _toml("backend", backend))
    yield ingest, api


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))  # each command runs its own event loop


async def test_a_survey_of_a_new_area_becomes_a_dead_zone_map(
    configs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest, api = configs
    survey = ["import", str(SURVEY), "--park", "hd-new", "--mapping", "gnettrack"]
    survey += ["--timezone", "Asia/Ho_Chi_Minh", "--config", str(ingest), "--json"]

    # The ingester refuses unknown parks: before the park exists, nothing is stored.
    assert await _cli(*survey) == 0
    refused = json.loads(capsys.readouterr().out)
    assert refused["stored"] == 0 and refused["refused"].get("unknown_park") == refused["rows"] - 1

    boundary = tmp_path / "hd-new.geojson"
    await asyncio.to_thread(boundary.write_text, json.dumps(BOUNDARY))
    create = ["park", "create", "hd-new", "--name", "Hai Duong new area", "--boundary", str(boundary)]
    assert await _cli(*create, "--timezone", "Asia/Ho_Chi_Minh", "--config", str(api)) == 0
    capsys.readouterr()

    assert await _cli(*survey) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows"], report["stored"], report["h3_cells"]) == (117, 115, 19)

    assert (
        await _cli("api", "--config", str(api), "key-create", "--name", "planner", "--role", "planner") == 0
    )
    key = capsys.readouterr().out.strip()
    assert await _cli("api", "--config", str(api), "key-create", "--name", "eng", "--role", "engineer") == 0
    engineer = capsys.readouterr().out.strip()

    settings = load_settings(ApiSettings, str(api))
    backend = build_backend(settings)
    registry = Registry(settings.api.registry_path)
    try:
        with TestClient(create_app(settings, backend=backend, registry=registry)) as client:
            parks = client.get("/api/v1/parks", headers={"X-API-Key": key}).json()
            assert [p["id"] for p in parks["items"]] == ["hd-new"]
            answer = client.get(
                "/api/v1/coverage/dead-zones",
                params={"park": "hd-new", "from": "2026-08-14T00:00:00Z", "to": "2026-08-15T00:00:00Z"},
                headers={"X-API-Key": key},
            )
            dead = client.get(
                "/api/v1/dead-letters", params={"park": "hd-new"}, headers={"X-API-Key": engineer}
            )
            sinr = client.get(
                "/api/v1/dead-letters",
                params={"park": "hd-new", "code": "out_of_range", "field": "sinr_db"},
                headers={"X-API-Key": engineer},
            )
            denied = client.get("/api/v1/dead-letters", headers={"X-API-Key": key})
    finally:
        registry.close()
        backend.close()
    assert answer.status_code == 200, answer.text
    zones = answer.json()["features"]
    assert len(zones) == 1, zones
    props = zones[0]["properties"]
    assert set(props["cells"]) == HOLE
    assert (props["park"], props["operators"], props["tech"]) == ("hd-new", ["Viettel"], "LTE")
    assert props["worst_rsrp_dbm"] <= -121
    # What the import refused is readable, grouped by reason code, on both backends.
    assert dead.status_code == 200, dead.text
    assert dead.json()["codes"] == {"unknown_park": 1, "position": 1, "out_of_range": 1}
    (only,) = sinr.json()["items"]
    assert only["reason"] == "out_of_range: sinr_db=41.0 > 40" and only["gw"] == "import"
    assert denied.status_code == 403  # raw payloads are for engineers
