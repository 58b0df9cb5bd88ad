"""The map's selectors and view: no duplicate options however often the page refreshes, "All
parks" shows every park, and a slow answer for an earlier choice never overrides a later one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import P1, P2, P3, Page

pytestmark = pytest.mark.integration


def _options(page: Any, select: str) -> list[str]:
    return list(page.eval_on_selector_all(f"#{select} option", "os => os.map(o => o.value)"))


def test_park_and_operator_lists_never_repeat_an_option(page: Page) -> None:
    pg = page.open()
    for hours in ["1", "168", "24", "168", "24"]:
        before = page.refreshed()
        pg.select_option("#window", hours)
        page.wait_refresh_after(before)
    parks, operators = _options(pg, "park"), _options(pg, "operator")
    assert parks == ["", "p1", "p2", "p3"], parks
    assert operators == ["", "*worst", "Alpha", "Beta"], operators
    assert pg.eval_on_selector_all("#park option", "os => os.map(o => o.textContent)")[1] == "Park one"
    assert page.errors == [] and page.foreign == []


def _bbox(page: Any) -> list[float]:
    return [float(x) for x in page.eval_on_selector("#map", "m => m.dataset.bounds").split(",")]


def _inside(ring: list[list[float]], bbox: list[float]) -> bool:
    west, south, east, north = bbox
    return all(west <= x <= east and south <= y <= north for x, y in ring)


def test_all_parks_fits_every_park_and_one_park_fits_that_park(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    one = _bbox(pg)
    assert _inside(P1, one) and not _inside(P2, one)
    pg.select_option("#park", "")
    pg.wait_for_function("document.getElementById('map').dataset.view === '*'", timeout=30_000)
    every = _bbox(pg)
    assert all(_inside(ring, every) for ring in (P1, P2, P3)), every
    # Fitted, not a fixed 3 km view: the parks span ~25 km and the view is at most four times that.
    assert every[2] - every[0] < 4 * (P3[1][0] - P2[0][0])
    assert int(pg.eval_on_selector("#map", "m => m.dataset.parks")) == 3
    assert page.errors == []


def test_a_late_answer_for_an_earlier_park_is_dropped(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    held: list[Any] = []
    pg.route("**/api/v1/coverage/cells?*park=p2*", lambda route: held.append(route))
    with pg.expect_request("**/api/v1/coverage/cells?*park=p2*"):
        pg.select_option("#park", "p2")
    before = page.refreshed()
    pg.select_option("#park", "")
    page.wait_refresh_after(before)
    pg.wait_for_function("document.getElementById('map').dataset.view === '*'", timeout=30_000)
    assert len(held) == 1
    held[0].continue_()
    pg.wait_for_function("Number(document.body.dataset.dropped || 0) >= 1", timeout=30_000)
    assert pg.eval_on_selector("#map", "m => m.dataset.view") == "*"
    assert pg.input_value("#park") == ""
    assert all(_inside(ring, _bbox(pg)) for ring in (P1, P2, P3))
