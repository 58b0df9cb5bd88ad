"""The built-in dashboard in a real headless Chromium, against a real ``parkwatch api`` process
over a DuckDB file holding the API test data set moved to end a few minutes ago (the page asks
for windows ending now)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.auth import key_hash
from tests.api.data import T0, Rows, dataset, load_duckdb
from tests.conftest import IN_CI
from tests.processes import Process, parkwatch

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "web-test-admin-key"
P1 = [[106.744, 20.794], [106.756, 20.794], [106.756, 20.806], [106.744, 20.806]]
P2 = [[106.60, 20.86], [106.63, 20.86], [106.63, 20.88], [106.60, 20.88]]
P3_NAME = "Park three: Dinh Vu - Cat Hai Economic Zone, southern section (approximate)"
"""A long park name: the park selector must still fit a phone's width."""
P3 = [[106.80, 20.70], [106.83, 20.70], [106.83, 20.72], [106.80, 20.72]]


def recent(rows: Rows) -> Rows:
    """The data set with every timestamp moved so that its newest reading is ten minutes old."""
    newest = max(r["ts"] for table in rows.values() for r in table)
    shift = datetime.now(UTC) - timedelta(minutes=10) - newest
    assert newest >= T0
    return {name: [{**r, "ts": r["ts"] + shift} for r in table] for name, table in rows.items()}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium missing under CI=true")
        pytest.skip("chromium not installed: apt-get install chromium")
    return path


@dataclass
class Server:
    base: str
    key: str
    proc: Process


def _toml_ring(ring: list[list[float]]) -> str:
    return "[" + ", ".join(f"[{x}, {y}]" for x, y in ring) + "]"


def serve(tmp: Path, store: Path, *, extra: str = "") -> Process:
    """``parkwatch api`` over ``store`` with one admin key and three parks."""
    conf = tmp / "api.toml"
    conf.write_text(
        f'[api]\nregistry_path = "{tmp / "registry.sqlite"}"\ncache_ttl_s = 0.0\n{extra}\n'
        f'[backend]\ntype = "duckdb"\npath = "{store}"\n'
        "[coverage]\nmin_samples = 2\n"
        f'[[keys]]\nname = "admin"\nsha256 = "{key_hash(KEY)}"\nrole = "admin"\nparks = []\n'
        f'[[parks]]\nid = "p1"\nname = "Park one"\nboundary = {_toml_ring(P1)}\n'
        f'[[parks]]\nid = "p2"\nname = "Park two"\nboundary = {_toml_ring(P2)}\n'
        f'[[parks]]\nid = "p3"\nname = "{P3_NAME}"\nboundary = {_toml_ring(P3)}\n'
    )
    return Process(parkwatch("api", "--config", str(conf), "--port", "0"), workdir=tmp, name="api")


@pytest.fixture(scope="package")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web") / "store.duckdb"
    load_duckdb(path, recent(dataset()))
    return path


ROADS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"park": "p1"},
            "geometry": {"type": "LineString", "coordinates": [[106.745, 20.800], [106.755, 20.800]]},
        },
        {
            "type": "Feature",
            "properties": {"park": "p1"},
            "geometry": {"type": "LineString", "coordinates": [[106.750, 20.795], [106.750, 20.805]]},
        },
    ],
}


@contextmanager
def running(tmp: Path, store: Path, *, extra: str) -> Iterator[Server]:
    """A ``parkwatch api`` process with ``extra`` lines in its ``[api]`` table."""
    proc = serve(tmp, store, extra=extra)
    found = proc.wait_for_line(r"listening on (http://\S+) ")
    try:
        yield Server(base=found.group(1), key=KEY, proc=proc)
    finally:
        assert proc.stop() == 0, proc.text()[-2000:]


@pytest.fixture(scope="package")
def server(web_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The offline dashboard (no tiles) with two road lines in park p1."""
    tmp = tmp_path_factory.mktemp("web-api")
    roads = tmp / "roads.geojson"
    roads.write_text(json.dumps(ROADS))
    with running(tmp, web_store, extra=f'tile_url = "none"\nroad_lines_file = "{roads}"') as srv:
        yield srv


@pytest.fixture(scope="package")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A page of the dashboard with every browser error, failed request and non-loopback request
    recorded."""

    def __init__(self, browser: Any, server: Server, *, width: int = 1400, height: int = 900) -> None:
        self.width = width
        self.server = server
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # A request the page itself cancelled (Leaflet drops the tiles of a view it left) is no error.
        self.page.on(
            "requestfailed",
            lambda r: None if r.failure == "net::ERR_ABORTED" else self.errors.append(f"failed {r.url}"),
        )
        self.page.on("request", self._request)

    def _request(self, r: Any) -> None:
        if not r.url.startswith((self.server.base, "data:", "blob:")):
            self.foreign.append(r.url)

    def open(self, fragment: str = "") -> Any:
        self.page.goto(f"{self.server.base}/dashboard/#key={self.server.key}{fragment}")
        self.page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0", timeout=30_000)
        return self.page

    def refreshed(self) -> str:
        return str(self.page.evaluate("document.body.dataset.refreshed"))

    def wait_refresh_after(self, before: str) -> None:
        self.page.wait_for_function(f"(document.body.dataset.refreshed || '') !== '{before}'", timeout=30_000)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Page]:
    pg = Page(browser, server)
    yield pg
    pg.close()
