"""The dashboard's map settings: ``[api] tile_url`` / ``tile_attribution`` / ``road_lines_file``
checked at start-up and handed to the page in ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.web import create_dashboard, dashboard_settings
from api.web.app import load_road_lines
from settings.api import OSM_TILE_URL, ApiSettings
from settings.errors import ConfigError
from settings.loader import settings_from_dict


def test_default_base_map_is_openstreetmap_with_its_attribution() -> None:
    opts = settings_from_dict(ApiSettings, {}).api
    assert opts.tile_url == OSM_TILE_URL == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in opts.tile_attribution and opts.road_lines_file == ""


@pytest.mark.parametrize(
    "url",
    [
        "tile.openstreetmap.org/{z}/{x}/{y}.png",
        "https://t.example/{z}/{x}.png",
        "ftp://t/{z}/{x}/{y}",
        'https://t/{z}/{x}/{y}"><script>',
    ],
)
def test_a_tile_url_that_is_no_xyz_template_fails_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError, match=r"tile_url"):
        settings_from_dict(ApiSettings, {"api": {"tile_url": url}})


@pytest.mark.parametrize(
    "url",
    ["", "none", "http://10.0.0.5:8081/tiles/{z}/{x}/{y}.png", "https://{s}.tile.example/{z}/{x}/{y}.png"],
)
def test_offline_and_self_hosted_tile_urls_are_accepted(url: str) -> None:
    assert settings_from_dict(ApiSettings, {"api": {"tile_url": url}}).api.tile_url == url


def test_none_means_no_tiles_and_no_attribution() -> None:
    cfg = dashboard_settings("none", "© someone")
    assert cfg.tile_url == "" and cfg.tile_attribution == "" and cfg.roads is None


def test_road_lines_reach_the_page(tmp_path: Path) -> None:
    roads = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "LineString", "coordinates": [[106.7, 20.8], [106.71, 20.8]]},
            }
        ],
    }
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(roads))
    app = create_dashboard(dashboard_settings("https://t.example/{z}/{x}/{y}.png", "© T", str(path)))
    body = TestClient(app).get("/config.json").json()
    assert body["tile_url"] == "https://t.example/{z}/{x}/{y}.png" and body["tile_attribution"] == "© T"
    assert body["roads"]["features"][0]["geometry"]["coordinates"][1] == [106.71, 20.8]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file"),
        ("{not json", "Expecting"),
        ('{"type": "FeatureCollection", "features": []}', "with features"),
        (
            '{"type": "FeatureCollection", "features": [{"geometry": {"type": "Point", "coordinates": [1, 2]}}]}',
            "feature 0",
        ),
    ],
)
def test_a_bad_road_lines_file_fails_naming_the_key(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "roads.geojson"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=r"api\.road_lines_file") as caught:
        load_road_lines(str(path))
    assert problem in str(caught.value)
