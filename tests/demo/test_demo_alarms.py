"""``parkwatch demo`` raises real alarms within two minutes of its start (a machine fault, a gateway
going offline, a modem in a dead zone), and an operator acknowledges, shelves and unshelves one from
the dashboard in a real headless Chromium: each click goes to the API and the new state comes back."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.demo.test_demo import CHROMIUM_ARGS, Demo, _chromium, _wait_for
from tests.servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, float]]:
    data = tmp_path_factory.mktemp("demo-alarms")
    api_port, mqtt_port = free_port(), free_port()
    log = data / "demo.out"
    argv = [
        sys.executable, "-m", "parkwatch", "demo", "--duration", "300", "--data-dir", str(data / "data"),
        "--mqtt-port", str(mqtt_port), "--api-port", str(api_port), "--survey-seconds", "0",
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        text = _wait_for(lambda: "API key (admin):" in log.read_text() and log.read_text(), 120, "the key")
        key = re.search(r"API key \(admin\): (\S+)", text).group(1)  # type: ignore[union-attr]
        yield Demo(base=f"http://127.0.0.1:{api_port}", key=key, proc=proc, log=log), started
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _alarms(d: Demo) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = d.get("/api/v1/alarms")["items"]
    return items


def test_demo_raises_fault_offline_and_coverage_alarms_within_two_minutes(demo: tuple[Demo, float]) -> None:
    d, started = demo
    wanted = {
        ("machine_fault", "dv-gw-01/cnc-01"),  # the scheduled fault of cnc-01
        ("gateway_offline", "td-gw-01"),  # the demo's outage of one gateway
        ("uplink-dead-zone", "ndv-gw-01"),  # a gateway whose modem sits in a coverage hole
    }

    def seen() -> set[tuple[str, str]]:
        got = {(a["rule_id"], a["source"]) for a in _alarms(d)}
        return got if wanted <= got else set()

    _wait_for(seen, 150 - (time.monotonic() - started), "the three demo alarms")
    assert time.monotonic() - started <= 150  # two minutes of demo, plus its start-up
    by = {(a["rule_id"], a["source"]): a for a in _alarms(d)}
    assert by[("machine_fault", "dv-gw-01/cnc-01")]["priority"] == "critical"
    assert by[("gateway_offline", "td-gw-01")]["priority"] == "high"
    kpis = d.get("/api/v1/alarms/kpis")
    assert kpis["activations"] >= 3


def test_acknowledge_round_trip_in_chromium(demo: tuple[Demo, float]) -> None:
    from playwright.sync_api import sync_playwright

    d, _ = demo
    fault = _wait_for(
        lambda: [
            a for a in _alarms(d) if a["rule_id"] == "machine_fault" and a["state"] == "active_unacknowledged"
        ],
        150,
        "an unacknowledged machine fault",
    )[0]
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        # The demo's base map is OpenStreetMap's tiles (the online default): without internet access
        # their loads fail; every other console error counts.
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "tile.openstreetmap.org" not in m.location.get("url", "")
                else None
            ),
        )
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{d.base}/dashboard/#key={d.key}")
        row = page.locator(f'#alarms-panel tr[data-alarm="{fault["id"]}"]')
        row.wait_for(timeout=30_000)
        assert page.locator('#alarms-panel [data-kpi="per day"]').count() == 1
        row.locator('button[data-action="ack"]').click()
        page.wait_for_function(
            f"""(document.querySelector('#alarms-panel tr[data-alarm="{fault["id"]}"] [data-role=state]') || {{}})
                .textContent?.startsWith('active, acknowledged')""",
            timeout=30_000,
        )
        assert "acknowledged" in page.locator('#alarms-panel [data-role="status"]').inner_text()
        # Shelve it for 30 minutes with a reason, from the same row, then unshelve it.
        row.locator('button[data-action="shelve"]').click()
        row.locator('input[name="minutes"]').fill("30")
        row.locator('input[name="reason"]').fill("antenna crew on site")
        row.locator('.ap-shelve-form button[type="submit"]').click()
        page.wait_for_function(
            f"""(document.querySelector('#alarms-panel tr[data-alarm="{fault["id"]}"] [data-role=state]') || {{}})
                .textContent?.startsWith('shelved')""",
            timeout=30_000,
        )
        shelved = d.get(f"/api/v1/alarms/{fault['id']}")
        assert (shelved["state"], shelved["shelve_reason"]) == ("shelved", "antenna crew on site")
        row.locator('button[data-action="unshelve"]').click()
        page.wait_for_function(
            f"""(document.querySelector('#alarms-panel tr[data-alarm="{fault["id"]}"] [data-role=state]') || {{}})
                .textContent?.startsWith('active, acknowledged')""",
            timeout=30_000,
        )
        browser.close()
    after = d.get(f"/api/v1/alarms/{fault['id']}")
    assert (after["state"], after["acknowledged_by"]) == ("active_acknowledged", "demo-admin")
    assert errors == []
