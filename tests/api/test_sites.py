"""Cell sites, best server and zone changes through the API, over a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import WINDOW, api_settings, headers
from tests.api.data import load_duckdb
from tests.api.sites_data import OPERATORS_BY_PLMN, SITES_CSV, two_weeks

CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("sites") / "store.duckdb"
    load_duckdb(path, two_weeks())
    backend = DuckDBQuery(path=path)
    registry = Registry(tmp_path_factory.mktemp("registry") / "registry.sqlite")
    settings = api_settings(coverage={"operators_by_plmn": OPERATORS_BY_PLMN})
    with TestClient(
        create_app(settings, backend=backend, registry=registry), raise_server_exceptions=False
    ) as c:
        yield c
    backend.close()
    registry.close()


def test_dead_zones_carry_no_site_fields_before_any_import(client: TestClient) -> None:
    r = client.get(
        "/api/v1/coverage/dead-zones", params={"park": "p1", **WINDOW}, headers=headers("viewer-p1")
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"], "the test data has a dead zone"
    assert all("nearest_site" not in f["properties"] for f in r.json()["features"])


def test_import_keeps_good_rows_and_reports_bad_ones_by_line(client: TestClient) -> None:
    r = client.post("/api/v1/sites", content=SITES_CSV, headers={**headers("viewer-p1"), **CSV})
    assert r.status_code == 403
    r = client.post("/api/v1/sites", content=SITES_CSV, headers={**headers("admin"), **CSV})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows"], body["added"] + body["replaced"], body["refused"]) == (10, 6, 4)
    assert [e["line"] for e in body["errors"]] == [7, 8, 9, 10]
    assert "radio" in body["errors"][0]["reason"] and "lon" in body["errors"][1]["reason"]
    assert "fields" in body["errors"][2]["reason"] and "samples" in body["errors"][3]["reason"]


def test_a_body_without_good_rows_is_refused_with_the_reasons(client: TestClient) -> None:
    r = client.post("/api/v1/sites", content="LTE,452,90\n", headers={**headers("admin"), **CSV})
    assert r.status_code == 400
    assert r.json()["error"]["errors"][0]["line"] == 1
    r = client.post("/api/v1/sites", content="radio,mcc\nLTE,452\n", headers={**headers("admin"), **CSV})
    assert r.status_code == 400 and "lacks the OpenCelliD column" in r.json()["error"]["message"]


def test_sites_near_a_park_as_geojson_with_operator(client: TestClient) -> None:
    r = client.get("/api/v1/sites", params={"park": "p1"}, headers=headers("viewer-p1"))
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    by_cell = {f["properties"]["cell"]: f["properties"] for f in feats}
    assert set(by_cell) == {2000, 2001, 3000, 4000, 5000}, "the site at 110°E is far from p1"
    assert by_cell[2000]["operator"] == "Alpha" and by_cell[4000]["operator"] == "Beta"
    assert by_cell[5000]["operator"] is None
    assert by_cell[2000]["range_m"] == 1500 and by_cell[3000]["radio"] == "NR"
    assert feats[0]["geometry"]["type"] == "Point"
    r = client.get("/api/v1/sites", params={"park": "p1"}, headers=headers("viewer-p2"))
    assert r.status_code == 403


def test_each_dead_zone_gets_its_operators_nearest_site(client: TestClient) -> None:
    r = client.get(
        "/api/v1/coverage/dead-zones", params={"park": "p1", **WINDOW}, headers=headers("viewer-p1")
    )
    zones = [f["properties"] for f in r.json()["features"]]
    alpha_lte = [z for z in zones if z["operators"] == ["Alpha"] and z["tech"] == "LTE"]
    assert alpha_lte, zones
    z = alpha_lte[0]
    # Site 2000 at (106.756, 20.808) lies north-east of the hole at (106.753, 20.803); Beta's
    # site 4000 sits in the hole but belongs to another operator.
    assert z["nearest_site"] == "LTE:452-90:100:2000"
    assert 300 < z["nearest_site_distance_m"] < 900
    assert 0 < z["nearest_site_bearing_deg"] < 90
    for fmt, marker in (
        ("csv", "nearest_site_distance_m"),
        ("kml", "LTE:452-90:100:2000"),
        ("geojson", "nearest_site_bearing_deg"),
    ):
        r = client.get(
            "/api/v1/export/dead-zones",
            params={"park": "p1", "format": fmt, **WINDOW},
            headers=headers("planner-p1"),
        )
        assert r.status_code == 200 and marker in r.text, fmt


def test_best_server_flags_pilot_pollution_where_three_cells_are_within_5_db(client: TestClient) -> None:
    params = {"park": "p1", "operator": "Alpha", "technology": "LTE", **WINDOW}
    r = client.get("/api/v1/coverage/best-server", params=params, headers=headers("viewer-p1"))
    assert r.status_code == 200, r.text
    cells = [f["properties"] for f in r.json()["features"]]
    assert cells and all(c["operator"] == "Alpha" and c["tech"] == "LTE" for c in cells)
    polluted = [c for c in cells if c["pilot_pollution"]]
    clean = [c for c in cells if not c["pilot_pollution"]]
    assert polluted and clean
    assert all(set(c["servers_within_5db"]) == {"1000", "1001", "1002"} for c in polluted)
    assert all(c["server"] == "2000" for c in clean if c["servers_within_5db"] == ["2000"])
    assert r.json()["pilot_polluted_cells"] == len(polluted)
    bad = client.get(
        "/api/v1/coverage/best-server", params={**params, "tech": "NR"}, headers=headers("viewer-p1")
    )
    assert bad.status_code == 422 and "disagree" in bad.text


def test_zone_changes_against_the_week_before(client: TestClient) -> None:
    params = {"park": "p1", "operator": "Alpha", **WINDOW}
    r = client.get("/api/v1/coverage/zone-changes", params=params, headers=headers("viewer-p1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["previous_window"] == ["2026-10-25T00:00:00+00:00", "2026-11-01T00:00:00+00:00"]
    statuses = {f["properties"]["status"] for f in body["features"]}
    lte = [f["properties"] for f in body["features"] if f["properties"]["tech"] == "LTE"]
    assert lte, body
    big = max(lte, key=lambda z: z["area_before_m2"])
    assert big["status"] == "shrunk", lte
    assert big["cleared_area_m2"] > 0 and big["area_after_m2"] < big["area_before_m2"]
    assert statuses <= set(body["counts"])
