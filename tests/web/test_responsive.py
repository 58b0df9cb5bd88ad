"""Every screen size, from a field engineer's phone to a wall screen: the header, footer, map,
its controls, the layer control, the legend and the cards never overlap, and nothing makes the
page scroll sideways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Page, Server

pytestmark = pytest.mark.integration

BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY]; };
  const one = (sel) => { const el = document.querySelector(sel); return el && el.offsetParent !== null ? box(el) : null; };
  const all = (sel) => [...document.querySelectorAll(sel)].filter((el) => el.offsetParent !== null).map(box);
  return {
    header: one("header#top"), footer: one("#footer"), map: one(".map-wrap"), layers: one("#layers"),
    legend: one("#legend"), downloads: one("#downloads"),
    controls: all("#map .leaflet-control"), cards: all("aside .card"), aside: one("aside"),
    scrollWidth: document.documentElement.scrollWidth,
  };
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def _inside(inner: list[float], outer: list[float]) -> bool:
    return (
        inner[0] >= outer[0] - 0.5
        and inner[1] >= outer[1] - 0.5
        and inner[2] <= outer[2] + 0.5
        and inner[3] <= outer[3] + 0.5
    )


@pytest.mark.parametrize(("width", "height"), [(360, 740), (800, 1000), (1920, 1080)])
def test_no_boxes_overlap(browser: Any, server: Server, width: int, height: int) -> None:
    page = Page(browser, server, width=width, height=height)
    try:
        pg = page.open()
        pg.wait_for_function("Number(document.getElementById('map').dataset.cells || 0) > 0", timeout=30_000)
        b = pg.evaluate(BOXES)
        assert b["scrollWidth"] <= width, b["scrollWidth"]
        named = {k: b[k] for k in ("header", "footer", "map", "layers", "legend", "downloads")}
        assert all(v is not None for v in named.values()), named
        keys = list(named)
        for i, x in enumerate(keys):
            for y in keys[i + 1 :]:
                if {x, y} in ({"layers", "legend"}, {"legend", "downloads"}, {"layers", "downloads"}):
                    continue  # stacked in one column: checked below
                assert not _overlap(named[x], named[y]), (width, x, y, named[x], named[y])
        assert named["layers"][3] <= named["legend"][1] + 0.5 <= named["downloads"][1] + 0.5
        assert len(b["controls"]) >= 3  # zoom, scale, attribution
        for c in b["controls"]:
            assert _inside(c, named["map"]), (width, c, named["map"])
            for k in ("header", "footer", "layers", "legend"):
                assert not _overlap(c, named[k]), (width, k, c)
        for i, c in enumerate(b["controls"]):
            for d in b["controls"][i + 1 :]:
                assert not _overlap(c, d), (width, c, d)
        # Cards scrolled out of the panel are clipped by it: compare what shows.
        aside = b["aside"]
        cards = [
            [c[0], max(c[1], aside[1]), c[2], min(c[3], aside[3])]
            for c in b["cards"]
            if c[1] < aside[3] and c[3] > aside[1]
        ]
        assert len(b["cards"]) >= 5 and cards
        for i, c in enumerate(cards):
            assert not _overlap(c, named["footer"]) and not _overlap(c, named["header"]), (width, c)
            assert not _overlap(c, named["map"]), (width, c)
            for d in cards[i + 1 :]:
                assert not _overlap(c, d), (width, c, d)
        assert page.errors == []
    finally:
        page.close()
