"""Map layers: one operator at a time, composite best/worst operator per cell (never stacked
colours), the layer control, hatched survey gaps, optional layers of other API parts shown only
when they exist, and a legend that lists exactly what is drawn."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Page

pytestmark = pytest.mark.integration

NONE_FILL = "#d73027"


def _legend(pg: Any) -> list[str]:
    return list(pg.eval_on_selector_all("#legend [data-legend]", "ds => ds.map(d => d.dataset.legend)"))


def _choose(page: Page, select: str, value: str) -> None:
    before = page.refreshed()
    page.page.select_option(select, value)
    page.wait_refresh_after(before)


def _fills(pg: Any, pane: str = ".leaflet-overlay-pane") -> list[str]:
    return list(
        pg.eval_on_selector_all(
            f"{pane} path.leaflet-interactive", "ps => ps.map(p => p.getAttribute('fill'))"
        )
    )


def test_composite_layers_draw_one_polygon_per_cell(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    assert pg.input_value("#operator") == "Alpha" and pg.input_value("#tech") == "LTE"
    alpha = int(pg.eval_on_selector("#map", "m => m.dataset.cells"))
    _choose(page, "#operator", "")
    drawn = int(pg.eval_on_selector("#map", "m => m.dataset.cells"))
    # The same request the page just made (the window ends now: asked right after, it sees the same cells).
    answer = pg.evaluate(
        """async () => {
            const p = PW.filters({limit: '5000'}); p.delete('operator');
            return (await PW.api('coverage/cells', p)).features.map(f => f.properties.h3);
        }"""
    )
    distinct = len(set(answer))
    assert distinct < len(answer)  # two operators measured the same cells: stacking would hide one
    assert drawn == distinct >= alpha
    assert "Best operator per cell" in pg.inner_text("#legend")
    best_dead = _fills(pg).count(NONE_FILL)

    _choose(page, "#operator", "*worst")
    assert int(pg.eval_on_selector("#map", "m => m.dataset.cells")) == distinct
    assert "Worst operator per cell" in pg.inner_text("#legend")
    worst_dead = _fills(pg).count(NONE_FILL)
    # Alpha's planted hole is covered by Beta: it shows in the worst layer, not in the best.
    assert worst_dead > best_dead
    assert page.errors == []


def test_legend_lists_what_is_drawn_and_gaps_are_hatched_on_the_map(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    gaps = int(pg.eval_on_selector("#map", "m => m.dataset.gaps"))
    assert gaps > 0
    assert pg.locator("#map pattern#pw-hatch").count() == 1
    assert pg.locator('#map path[fill="url(#pw-hatch)"]').count() == gaps
    legend = _legend(pg)
    assert "gap" in legend and "park" in legend and "road" in legend
    faded = pg.locator('#map path[fill-opacity="0.3"]').count()
    assert ("faded" in legend) == (faded > 0)
    dotted = pg.locator('#map path[stroke-dasharray="2 3"]').count()
    assert ("uncertain" in legend) == (dotted > 0)
    drawn = {f for f in _fills(pg) if f and f.startswith("#")}
    colours = {
        "excellent": "#1a9850",
        "good": "#91cf60",
        "fair": "#fee08b",
        "poor": "#fc8d59",
        "none": NONE_FILL,
    }
    assert {k for k, c in colours.items() if c in drawn} == {k for k in colours if k in legend}

    pg.uncheck('#layers input[data-layer="gaps"]')
    assert pg.locator('#map path[fill="url(#pw-hatch)"]').count() == 0
    assert "gap" not in _legend(pg)
    pg.uncheck('#layers input[data-layer="cells"]')
    assert not ({"excellent", "good", "fair", "poor", "none", "faded"} & set(_legend(pg)))

    before = page.refreshed()
    pg.check('#layers input[name="colour"][value="quality"]')
    pg.check('#layers input[data-layer="cells"]')
    pg.check('#layers input[data-layer="interference"]')
    page.wait_refresh_after(before)
    assert "Signal quality (SINR)" in pg.inner_text("#legend")
    assert page.errors == []


def test_measured_and_good_plus_say_what_they_are_shares_of(page: Page) -> None:
    pg = page.open()
    heads = pg.eval_on_selector_all("#summary th", "ths => ths.map(th => th.title)")
    assert "park's area" in heads[2] and "measured area" in heads[3]
    assert "not of the park" in pg.inner_text("#coverage-card .note")


def test_optional_layers_hidden_without_their_endpoints(page: Page) -> None:
    # An API without those parts (an older server): their paths are not in its OpenAPI document.
    def openapi(route: Any) -> None:
        doc = route.fetch().json()
        for path in ("/api/v1/coverage/predicted", "/api/v1/sites", "/api/v1/coverage/best-server"):
            doc["paths"].pop(path, None)
        route.fulfill(json=doc)

    page.page.route("**/openapi.json", openapi)
    pg = page.open()
    for name in ("predicted", "sites", "bestserver"):
        assert pg.locator(f'#layers input[data-layer="{name}"]').is_hidden()
    assert page.errors == []


SITES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [106.7531, 20.8035]},
            "properties": {
                "radio": "LTE",
                "mcc": 452,
                "net": 4,
                "area": 1,
                "cell": 777,
                "range_m": 900,
                "samples": 3,
            },
        }
    ],
}


def test_an_optional_layer_appears_when_its_endpoint_answers(page: Page) -> None:
    # The API offers the three optional layers; no site list is imported in this store, so one site
    # is stood in for (the real endpoint's GeoJSON shape); the rest of the page talks to the real API.
    page.page.route("**/api/v1/sites?*", lambda route: route.fulfill(json=SITES))
    pg = page.open()
    box = pg.locator('#layers input[data-layer="sites"]')
    box.wait_for(state="visible", timeout=30_000)
    assert pg.locator('#layers input[data-layer="predicted"]').is_visible()
    before = page.refreshed()
    box.check()
    page.wait_refresh_after(before)
    assert "site" in _legend(pg)
    assert pg.locator("#map path.leaflet-interactive[stroke='#13233a'][fill='#fff']").count() == 1
    assert page.errors == []
