"""``parkwatch demo`` end to end: one command brings up the platform; the API and the built-in
dashboard (in a real headless Chromium) show coverage cells, dead zones, factory KPIs and live data."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.servers import free_port

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Demo:
    base: str
    key: str
    proc: subprocess.Popen[str]
    log: Path

    def get(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}{path}", headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


def _wait_for(pred: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo")
    api_port, mqtt_port = free_port(), free_port()
    log = data / "demo.out"
    argv = [
        sys.executable, "-m", "parkwatch", "demo", "--duration", "240", "--data-dir", str(data / "data"),
        "--mqtt-port", str(mqtt_port), "--api-port", str(api_port), "--survey-seconds", "6",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:

        def printed_key() -> str | None:
            text = log.read_text()
            return text if "API key (admin):" in text else None

        text = _wait_for(printed_key, 120, "the demo to print its key")
        key = re.search(r"API key \(admin\): (\S+)", text).group(1)  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{api_port}/dashboard/#key={key}" in text
        yield Demo(base=f"http://127.0.0.1:{api_port}", key=key, proc=proc, log=log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    # DuckDB's bindings list "leaked" objects when the interpreter finalises; users must not see it.
    assert "nanobind" not in log.read_text(), log.read_text()[-3000:]


def test_demo_serves_coverage_dead_zones_and_factory_kpis(demo: Demo) -> None:
    cells = _wait_for(lambda: demo.get("/api/v1/coverage/cells?limit=10")["total"], 60, "coverage cells")
    assert cells > 0
    zones = _wait_for(lambda: demo.get("/api/v1/coverage/dead-zones")["features"], 60, "a dead zone")
    assert zones[0]["properties"]["area_m2"] > 0
    oee = _wait_for(
        lambda: [
            r for r in demo.get("/api/v1/factory/oee?level=machine")["items"] if r["availability"] is not None
        ],
        90,
        "OEE figures",
    )
    assert all(0.0 <= r["availability"] <= 1.0 for r in oee)
    gateways = demo.get("/api/v1/gateways")["items"]
    agents = [g for g in gateways if "survey" not in g["gw"]]
    assert len(agents) >= 5 and all(g["online"] for g in agents)
    # The survey vehicles keep driving after the fast replay: online, one unbroken seq stream.
    survey = [g for g in gateways if "survey" in g["gw"]]
    assert survey and all(g["online"] for g in survey), [
        (g["gw"], g["reported_state"], g["last_seen_ms"]) for g in survey if not g["online"]
    ][:5]
    assert all(g["loss"] is None or g["loss"]["missing"] == 0 for g in gateways)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium missing under CI=true")
        pytest.skip("chromium not installed: apt-get install chromium")
    return path


def test_dashboard_in_chromium_shows_map_reacts_to_filters_and_updates_live(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    _wait_for(lambda: demo.get("/api/v1/coverage/dead-zones")["features"], 60, "a dead zone")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # The demo's base map is OpenStreetMap's tiles (the online default): without internet access
        # they fail to load and the page falls back to its offline map; that is not a page error.
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "tile.openstreetmap.org" not in m.location.get("url", "")
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{demo.base}/dashboard/#key={demo.key}")
        page.wait_for_function(
            "Number(document.getElementById('map').dataset.cells || 0) > 0", timeout=30_000
        )
        page.wait_for_function(
            "Number(document.getElementById('map').dataset.zones || 0) > 0", timeout=30_000
        )
        # The panels (tables, charts, fleet) render after the map, within the same refresh.
        page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0", timeout=30_000)
        assert page.locator("#keybar").is_hidden()
        assert page.locator("path.leaflet-interactive").count() > 10
        assert page.locator("#oee tbody tr").count() >= 1
        assert page.locator("#fleet-card .badge.online").count() >= 1

        before = page.evaluate("document.body.dataset.refreshed")
        tech = page.locator("#tech").input_value()
        page.select_option("#tech", "NR" if tech != "NR" else "LTE")
        page.wait_for_function(f"document.body.dataset.refreshed !== '{before}'", timeout=30_000)
        assert page.locator("#tech").input_value() != tech

        page.wait_for_function("Number(document.body.dataset.events || 0) >= 2", timeout=30_000)
        assert "live" in (page.locator("#live").get_attribute("class") or "")

        page.click("#lang")
        assert page.locator("h2[data-i18n=coverage]").inner_text() == "Vùng phủ sóng"
        browser.close()
    assert errors == []
