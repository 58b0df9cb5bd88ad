"""Trend charts (vendored uPlot, no CDN): OEE with A/P/Q, energy with peak demand, the alarm
timeline, the RSRP distribution per operator and readings/loss per gateway, all over the page's
one time window."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.web.conftest import Page

pytestmark = pytest.mark.integration

CHARTS = ("chart-oee", "chart-energy", "chart-alarms", "chart-rsrp", "chart-gateways")


def _data(pg: Any, chart: str) -> tuple[int, int]:
    return (
        int(pg.eval_on_selector(f"#{chart}", "c => c.dataset.series || 0")),
        int(pg.eval_on_selector(f"#{chart}", "c => c.dataset.points || 0")),
    )


def test_every_chart_draws_over_the_week(page: Page) -> None:
    pg = page.open()
    before = page.refreshed()
    pg.select_option("#window", "168")
    page.wait_refresh_after(before)
    assert _data(pg, "chart-oee") == (4, 14)  # OEE, A, P, Q; 12-hour buckets
    assert _data(pg, "chart-energy") == (2, 14)  # energy and peak demand
    assert _data(pg, "chart-alarms")[0] >= 1
    assert _data(pg, "chart-rsrp")[0] == 2  # Alpha and Beta
    series, gateways = _data(pg, "chart-gateways")
    assert series == 2 and gateways >= 2
    for chart in CHARTS:
        assert pg.locator(f"#{chart} .uplot canvas").count() == 1, chart
    legend = pg.inner_text("#chart-rsrp .u-legend")
    assert "Alpha" in legend and "Beta" in legend
    assert page.errors == [] and page.foreign == []


def test_one_window_applies_to_every_chart(page: Page) -> None:
    pg = page.open()
    seen: list[str] = []
    pg.on("request", lambda r: seen.append(r.url) if "/api/v1/" in r.url else None)
    before = page.refreshed()
    pg.select_option("#window", "1")
    page.wait_refresh_after(before)
    starts = {}
    for url in seen:
        q = parse_qs(urlparse(url).query)
        path = urlparse(url).path
        if path.endswith(("/oee/series", "/energy/series", "/alarms")):
            starts[path] = q["from"][0]
    assert len(starts) == 3 and len(set(starts.values())) == 1, starts
    assert _data(pg, "chart-oee")[1] in (0, 12)  # an hour is twelve 5-minute buckets (or no line at all)
