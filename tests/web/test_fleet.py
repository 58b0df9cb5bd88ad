"""The fleet panel: fixed gateways (a registered site with a position) apart from mobile probes,
sortable; a gateway's page with its status history, backlog, loss ledger and uplink signal."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.web.conftest import Page, Server

pytestmark = pytest.mark.integration


def _put(server: Server, path: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        f"{server.base}{path}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"X-API-Key": server.key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def _column(pg: Any, table: str) -> list[str]:
    return list(pg.eval_on_selector_all(f"#{table} tbody tr[data-gw]", "rs => rs.map(r => r.dataset.gw)"))


def test_fixed_and_mobile_gateways_are_separate_sortable_groups(page: Page) -> None:
    assert _put(page.server, "/api/v1/parks/p1/gateways/gw-1", {"lat": 20.8, "lon": 106.75}) == 200
    assert _put(page.server, "/api/v1/parks/p1/gateways/gw-2", {"description": "survey car"}) == 200
    pg = page.open()
    before = page.refreshed()
    pg.select_option("#park", "")
    page.wait_refresh_after(before)
    assert _column(pg, "fleet-fixed") == ["gw-1"]
    mobile = _column(pg, "fleet-mobile")
    assert "gw-2" in mobile and "gw-1" not in mobile and mobile == sorted(mobile)
    pg.click("#fleet-mobile th[data-sort=gw]")
    assert _column(pg, "fleet-mobile") == sorted(mobile, reverse=True)
    assert pg.get_attribute("#fleet-mobile th[data-sort=gw]", "aria-sort") == "descending"
    pg.click("#fleet-mobile th[data-sort=last_seen_ms]")
    assert pg.get_attribute("#fleet-mobile th[data-sort=last_seen_ms]", "aria-sort") == "ascending"
    assert page.errors == []


def test_a_gateways_page_shows_history_backlog_ledger_and_uplink(page: Page) -> None:
    pg = page.open()
    before = page.refreshed()
    pg.select_option("#window", "168")
    page.wait_refresh_after(before)
    pg.click("button.gw-link[data-gw=gw-1]")
    sheet = pg.locator("#gateway-page")
    sheet.wait_for(state="visible", timeout=10_000)
    pg.wait_for_function("document.getElementById('gateway-page').dataset.gw === 'gw-1'")
    text = sheet.inner_text()
    for label in ("Status history", "Backlog", "Loss ledger", "Uplink", "RSRP"):
        assert label in text, (label, text)
    assert "-90.0 dBm" in text and "Alpha" in text
    assert int(pg.eval_on_selector("#gw-chart", "c => c.dataset.points")) >= 1
    assert pg.locator("#gw-chart .uplot canvas").count() == 1
    assert pg.locator("#gw-changes li .badge.online").count() >= 1
    pg.keyboard.press("Escape")
    assert sheet.is_hidden()
    assert page.errors == []
