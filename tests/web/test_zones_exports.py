"""Dead zones in the page: a click opens their details; the download buttons save the current
view (filters and map area) as GeoJSON, CSV and KML from the export endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Page
from tests.web.test_layers import SITES

pytestmark = pytest.mark.integration


def _week(page: Page) -> Any:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    before = page.refreshed()
    pg.select_option("#window", "168")
    page.wait_refresh_after(before)
    pg.wait_for_function("Number(document.getElementById('map').dataset.zones || 0) > 0", timeout=30_000)
    return pg


def test_clicking_a_dead_zone_shows_its_details_and_nearest_site(page: Page) -> None:
    def openapi(route: Any) -> None:
        doc = route.fetch().json()
        doc["paths"]["/api/v1/sites"] = {"get": {}}
        route.fulfill(json=doc)

    # The cell-site endpoint is another part's; its documented answer is stood in for.
    page.page.route("**/openapi.json", openapi)
    page.page.route("**/api/v1/sites?*", lambda route: route.fulfill(json=SITES))
    pg = _week(page)
    before = page.refreshed()
    pg.check('#layers input[data-layer="sites"]')
    page.wait_refresh_after(before)
    pg.locator('#map path[stroke-dasharray="6 4"]').first.click()
    popup = pg.locator("#zone-popup")
    popup.wait_for(state="visible", timeout=10_000)
    text = popup.inner_text()
    for label in ("Cells", "Cause", "Confidence", "Samples", "First seen", "Last seen", "Nearest site"):
        assert label.lower() in text.lower(), (label, text)
    assert "8a" in text  # the H3 ids of the zone's cells
    assert "coverage hole" in text or "no service" in text
    assert "LTE cell 777" in text and " km" in text
    assert page.errors == []


def test_downloads_save_the_current_view_in_three_formats(page: Page, tmp_path: Path) -> None:
    pg = _week(page)
    exported: list[str] = []
    pg.on("request", lambda r: exported.append(r.url) if "/api/v1/export/" in r.url else None)
    files = {}
    for fmt in ("geojson", "csv", "kml"):
        with pg.expect_download(timeout=30_000) as dl:
            pg.click(f"#dl-{fmt}")
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        files[fmt] = path.read_text()
        assert path.name == f"parkwatch-cells.{fmt}"
    doc = json.loads(files["geojson"])
    assert doc["type"] == "FeatureCollection" and doc["features"]
    assert {f["properties"]["operator"] for f in doc["features"]} == {"Alpha"}
    assert {f["properties"]["tech"] for f in doc["features"]} == {"LTE"}
    header = files["csv"].splitlines()[0]
    assert "h3" in header and "operator" in header
    assert len(files["csv"].splitlines()) == len(doc["features"]) + 1
    assert files["kml"].lstrip().startswith("<?xml") and "<Placemark" in files["kml"]
    assert len(exported) == 3 and all("bbox=" in u and "park=p1" in u for u in exported)
    assert page.errors == []
