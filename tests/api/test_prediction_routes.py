"""Predicted coverage and survey plans over the test data set in a real DuckDB file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import h3
import pytest
from fastapi.testclient import TestClient

from analytics.survey_plan import GPX_NS
from parkwatch.cli import main
from tests.api.conftest import P1_BOUNDARY, WINDOW, headers

ADMIN = headers("admin")
LAYER = {**WINDOW, "park": "p1", "operator": "Alpha", "technology": "LTE"}


def test_predicted_layer_is_separate_from_measured_cells(client: TestClient) -> None:
    r = client.get("/api/v1/coverage/predicted", params=LAYER, headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["total"] == len(fc["features"]) > 0
    v = fc["validation"]
    assert set(v) >= {"method", "rmse_db", "bias_db", "interval_coverage", "idw_rmse_db"}
    assert v["rmse_db"] > 0 and 0.0 <= v["interval_coverage"] <= 1.0
    assert [(x["park"], x["operator"], x["tech"]) for x in fc["layers"]] == [("p1", "Alpha", "LTE")]
    cells = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "park": "p1", "operator": "Alpha", "tech": "LTE", "limit": 5000},
        headers=ADMIN,
    ).json()  # fmt: skip
    measured = {f["properties"]["h3"] for f in cells["features"]}
    predicted = {f["properties"]["cell"] for f in fc["features"]}
    assert measured and not measured & predicted
    for f in fc["features"]:
        pr = f["properties"]
        assert pr["class"] in {"predicted_dead", "predicted_ok", "predicted_uncertain"}
        assert pr["lower_dbm"] <= pr["predicted_rsrp_dbm"] <= pr["upper_dbm"]
        assert f["geometry"]["type"] == "Polygon"
    # Far from the planted hole (-85 dBm around), unmeasured park cells are predicted fine.
    assert any(f["properties"]["class"] == "predicted_ok" for f in fc["features"])
    assert fc["layers"][0]["predicted_cells"] == len(predicted)


def test_tech_is_accepted_as_well_and_all_layers_pool_their_validation(client: TestClient) -> None:
    one = client.get(
        "/api/v1/coverage/predicted", params={**WINDOW, "park": "p1", "operator": "Alpha", "tech": "LTE"}, headers=ADMIN
    ).json()  # fmt: skip
    assert [x["tech"] for x in one["layers"]] == ["LTE"]
    every = client.get(
        "/api/v1/coverage/predicted", params={**WINDOW, "park": "p1", "limit": 5000}, headers=ADMIN
    ).json()
    assert len(every["layers"]) == 4  # Alpha and Beta, LTE and NR
    assert every["validation"]["cells"] == sum(x["validation"]["cells"] for x in every["layers"])
    assert "pooled over 4 layers" in every["validation"]["method"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"technology": "WIFI"}, 422),
        ({"technology": "LTE", "tech": "NR"}, 422),
        ({"park": "p1\n"}, 422),
        ({"operator": "Alpha;DROP"}, 422),
        ({"park": "nowhere"}, 404),
        ({"format": "kml"}, 422),
        ({"waypoints": "0"}, 422),
    ],
)
def test_bad_parameters(client: TestClient, params: dict[str, str], status: int) -> None:
    path = (
        "/api/v1/coverage/survey-plan"
        if {"format", "waypoints"} & set(params)
        else "/api/v1/coverage/predicted"
    )
    r = client.get(path, params={**WINDOW, "park": "p1", **params}, headers=ADMIN)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_other_parks_are_not_visible_to_a_scoped_key(client: TestClient) -> None:
    r = client.get("/api/v1/coverage/predicted", params=LAYER, headers=headers("viewer-p2"))
    assert r.status_code == 403


def test_survey_plan_geojson_and_gpx(client: TestClient) -> None:
    fc = client.get("/api/v1/coverage/survey-plan", params={**LAYER, "waypoints": 8}, headers=ADMIN).json()
    points = [f for f in fc["features"] if f["properties"]["kind"] == "waypoint"]
    assert 1 <= len(points) <= 8 and fc["plans"][0]["waypoints"] == len(points)
    assert [f["properties"]["order"] for f in points] == list(range(1, len(points) + 1))
    lons = [p[0] for p in P1_BOUNDARY]
    lats = [p[1] for p in P1_BOUNDARY]
    for f in points:
        lon, lat = f["geometry"]["coordinates"]
        assert min(lons) - 0.002 <= lon <= max(lons) + 0.002 and min(lats) - 0.002 <= lat <= max(lats) + 0.002
    r = client.get(
        "/api/v1/coverage/survey-plan", params={**LAYER, "waypoints": 8, "format": "gpx"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/gpx+xml")
    root = ET.fromstring(r.content)
    g = f"{{{GPX_NS}}}"
    assert root.tag == f"{g}gpx" and root.get("version") == "1.1"
    pts = root.findall(f"{g}rte/{g}rtept")
    assert [(round(float(p.get("lon", "nan")), 6), round(float(p.get("lat", "nan")), 6)) for p in pts] == [
        tuple(f["geometry"]["coordinates"]) for f in points
    ]


def test_cli_writes_the_plan_as_gpx(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "api.toml"
    ring = ", ".join(f"[{lon}, {lat}]" for lon, lat in P1_BOUNDARY)
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "r.sqlite"}"\n[backend]\ntype = "duckdb"\npath = "{store}"\n'
        f'[[parks]]\nid = "p1"\nboundary = [{ring}]\n'
    )
    gpx = tmp_path / "plan.gpx"
    common = ["--config", str(cfg), "--park", "p1", "--operator", "Alpha", "--tech", "LTE",
              "--from", WINDOW["from"], "--to", WINDOW["to"]]  # fmt: skip
    assert main(["coverage", "plan", *common, "--waypoints", "6", "--gpx", str(gpx)]) == 0
    out = capsys.readouterr().out
    assert "p1 Alpha LTE: 6 waypoints" in out and "expected gain" in out
    root = ET.fromstring(gpx.read_text())
    assert len(root.findall(f"{{{GPX_NS}}}rte/{{{GPX_NS}}}rtept")) == 6
    assert main(["coverage", "predict", *common, "--summary"]) == 0
    assert "validation RMSE" in capsys.readouterr().out
    assert main(["coverage", "predict", *common[:2], "--park", "p1\n"]) == 2
    assert "is not a park id" in capsys.readouterr().err
    assert h3.is_valid_cell(root.findall(f"{{{GPX_NS}}}wpt/{{{GPX_NS}}}name")[0].text.split()[-1])  # type: ignore[union-attr]
