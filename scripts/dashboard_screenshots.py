"""Screenshots of the built-in dashboard for the README and docs/img, taken during `parkwatch demo`.

    python scripts/dashboard_screenshots.py [--out docs/img]

Starts the demo on free loopback ports, waits for dead zones and OEE figures, then takes the shots
in headless Chromium (/usr/bin/chromium). The "online" shot needs a tile server: this script
serves generated stand-in tiles on a loopback port (tests/web/tiles.py: a pale ground with a street
grid, not real map data) and points the page's tile_url at it, because OpenStreetMap's tiles are
out of reach here; with internet access the page shows OpenStreetMap's tiles in the same place.
The "offline" shot sets tile_url to none: park boundaries with their names, the survey routes as
road lines, the scale bar.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402
from tests.web.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.web.tiles import tile_server  # noqa: E402


def _wait(pred: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = pred()
        except (OSError, ValueError, KeyError):
            got = None
        if got:
            return got
        time.sleep(1.0)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="pw-shots-"))
    api_port = free_port()
    log = data / "demo.out"
    argv = [
        sys.executable, "-m", "parkwatch", "demo", "--duration", "900", "--data-dir", str(data / "d"),
        "--mqtt-port", str(free_port()), "--api-port", str(api_port), "--survey-seconds", "6",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    base = f"http://127.0.0.1:{api_port}"
    try:
        text = _wait(
            lambda: log.read_text() if "API key (admin):" in log.read_text() else None, 120, "the key"
        )
        key = re.search(r"API key \(admin\): (\S+)", text).group(1)  # type: ignore[union-attr]

        def get(path: str) -> Any:
            req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())

        _wait(lambda: get("/api/v1/coverage/dead-zones")["features"], 120, "dead zones")
        _wait(
            lambda: [r for r in get("/api/v1/factory/oee?level=line")["items"] if r["oee"] is not None],
            180,
            "OEE figures",
        )
        args.out.mkdir(parents=True, exist_ok=True)
        with tile_server() as tiles, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

            def shot(name: str, *, tile_url: str, width: int, height: int, lang: str = "en",
                     tech: str | None = None, full: bool = False) -> None:  # fmt: skip
                page = browser.new_page(viewport={"width": width, "height": height})

                def config(route: Any) -> None:
                    cfg = route.fetch().json()
                    cfg["tile_url"] = tile_url
                    cfg["tile_attribution"] = "stand-in tiles from a local tile server" if tile_url else ""
                    route.fulfill(json=cfg)

                page.on(
                    "console",
                    lambda m: print(f"  page {m.type}: {m.text}") if m.type in ("error", "warning") else None,
                )
                page.on("pageerror", lambda e: print(f"  page error: {e}"))
                page.route("**/dashboard/config.json", config)
                page.add_init_script(f"localStorage.setItem('pw.lang', '{lang}')")
                page.goto(f"{base}/dashboard/#key={key}")
                page.wait_for_function("document.getElementById('map').dataset.view", timeout=60_000)
                # The demo has minutes of data: the last hour shows its trends best.
                before = page.evaluate("document.body.dataset.refreshed")
                page.select_option("#window", "1")
                page.wait_for_function(f"document.body.dataset.refreshed !== '{before}'", timeout=60_000)
                page.wait_for_function("Number(document.getElementById('chart-oee').dataset.points || 0) > 0")
                if tech:
                    before = page.evaluate("document.body.dataset.refreshed")
                    page.select_option("#tech", tech)
                    page.wait_for_function(f"document.body.dataset.refreshed !== '{before}'", timeout=60_000)
                if tile_url:
                    page.wait_for_selector("img.leaflet-tile-loaded", timeout=30_000)
                page.wait_for_timeout(500)  # Leaflet's fade-in of tiles and tooltips
                page.screenshot(path=str(args.out / name), full_page=full)
                print(f"wrote {args.out / name}")
                page.close()

            shot("dashboard-en.png", tile_url=tiles, width=1600, height=1000)
            shot("dashboard-offline.png", tile_url="", width=1600, height=1000)
            shot("dashboard-vi-nr.png", tile_url="", width=1600, height=1000, lang="vi", tech="NR")
            shot("dashboard-phone.png", tile_url="", width=360, height=780)
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
