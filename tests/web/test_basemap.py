"""The base map: configured XYZ tiles with their attribution; without tiles (or when they never
load) the offline map with park boundaries, their names, road lines and a scale bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import P3_NAME, Page, Server, running
from tests.web.tiles import tile_server

pytestmark = pytest.mark.integration


def _map(pg: Any, key: str) -> str:
    return str(pg.eval_on_selector("#map", f"m => m.dataset.{key} || ''"))


def test_offline_map_draws_parks_roads_and_a_scale(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.roads === '2'", timeout=30_000)
    assert _map(pg, "basemap") == "offline"
    assert pg.locator("img.leaflet-tile").count() == 0
    assert _map(pg, "parks") == "3"
    assert pg.locator(".park-label").first.inner_text() in {"Park one", "Park two", P3_NAME}
    scale = pg.locator(".leaflet-control-scale-line")
    assert scale.is_visible() and scale.inner_text().endswith(("m", "km"))
    assert pg.locator("#basemap-note").is_hidden()
    assert page.errors == [] and page.foreign == []


@pytest.fixture(scope="module")
def tiled(web_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    with (
        tile_server() as url,
        running(tmp_path_factory.mktemp("tiled"), web_store, extra=f'tile_url = "{url}"') as srv,
    ):
        yield srv, url


def test_configured_tiles_are_the_base_map_with_their_attribution(
    browser: Any, tiled: tuple[Server, str], request: pytest.FixtureRequest
) -> None:
    server, url = tiled
    page = Page(browser, server)
    request.addfinalizer(page.close)
    pg = page.open()
    pg.wait_for_selector("img.leaflet-tile-loaded", timeout=30_000)
    assert _map(pg, "basemap") == "tiles"
    srcs = pg.eval_on_selector_all("img.leaflet-tile-loaded", "imgs => imgs.map(i => i.src)")
    assert srcs and all(s.startswith(url.split("{z}")[0]) for s in srcs)
    # The default attribution (OpenStreetMap's) stays, as the operator did not replace it.
    assert "OpenStreetMap" in pg.locator(".leaflet-control-attribution").inner_text()
    assert page.errors == []


def test_unreachable_tiles_fall_back_to_the_offline_map(
    browser: Any, web_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A closed loopback port: every tile fails at once.
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"
    with running(tmp_path_factory.mktemp("dead-tiles"), web_store, extra=f'tile_url = "{dead}"') as server:
        page = Page(browser, server)
        try:
            pg = page.open()
            pg.wait_for_function(
                "document.getElementById('map').dataset.basemap === 'offline-fallback'", timeout=30_000
            )
            assert pg.locator("#basemap-note").is_visible()
            assert _map(pg, "parks") == "3"
            unexpected = [
                e for e in page.errors if "Failed to load resource" not in e and dead.split("{z}")[0] not in e
            ]
            assert unexpected == []
        finally:
            page.close()
