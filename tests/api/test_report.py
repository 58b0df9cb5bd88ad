"""The coverage report: rendered in a real headless Chromium (HTML in both languages), printed to
PDF by it (API and ``parkwatch report``), and the PDF's pages counted."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.registry import Registry
from parkwatch.cli import main
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import P1_BOUNDARY, WINDOW, api_settings, headers
from tests.api.data import load_duckdb
from tests.api.sites_data import OPERATORS_BY_PLMN, SITES_CSV, two_weeks
from tests.conftest import IN_CI

pytestmark = pytest.mark.integration

SECTIONS = ("coverage", "change", "zones", "gaps", "broadband")
HEADINGS = {
    "en": ("Coverage by operator and technology", "Dead zones and their progress", "Survey gaps"),
    "vi": ("Vùng phủ theo nhà mạng và công nghệ", "Vùng lõm sóng và tiến độ xử lý", "Khu vực chưa khảo sát"),
}
EXPECTED_PAGES = 3
"""Figures and change; dead zones; survey gaps and broadband (each section starts a page)."""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium missing under CI=true")
        pytest.skip("chromium not installed: apt-get install chromium")
    return path


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF (``/Type /Page``, not ``/Pages``), the way a reader counts them."""
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("report")
    load_duckdb(tmp / "store.duckdb", two_weeks())
    return tmp / "store.duckdb", tmp / "registry.sqlite"


@pytest.fixture(scope="module")
def client(stores: tuple[Path, Path]) -> Iterator[TestClient]:
    backend = DuckDBQuery(path=stores[0])
    registry = Registry(stores[1])
    settings = api_settings(coverage={"operators_by_plmn": OPERATORS_BY_PLMN})
    with TestClient(
        create_app(settings, backend=backend, registry=registry), raise_server_exceptions=False
    ) as c:
        r = c.post(
            "/api/v1/sites", content=SITES_CSV, headers={**headers("admin"), "Content-Type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        yield c
    backend.close()
    registry.close()


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_html_report_renders_every_section_in_chromium(client: TestClient, lang: str) -> None:
    from playwright.sync_api import sync_playwright

    r = client.get(
        "/api/v1/reports/coverage",
        params={"park": "p1", "lang": lang, **WINDOW},
        headers=headers("viewer-p1"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda req: requested.append(req.url))
            page.set_content(r.text, wait_until="load")
            assert page.evaluate("document.documentElement.lang") == lang
            for section in SECTIONS:
                box = page.locator(f"section#{section}").bounding_box()
                assert box is not None and box["height"] > 20, section
            h2 = page.locator("h2").all_inner_texts()
            for heading in HEADINGS[lang]:
                assert heading in h2
            cards = page.locator("#zones .zone")
            assert cards.count() >= 1
            statuses = set(cards.evaluate_all("els => els.map(e => e.dataset.status)"))
            assert "shrunk" in statuses
            assert page.locator("#zones .zone svg polygon").count() > 3, "zone maps draw their cells"
            assert page.locator("#gaps svg polygon").count() > 1, "the gap map draws the park and its gaps"
            assert page.locator("#broadband table.broadband tbody tr").count() == 2
            site_text = page.locator("#zones").inner_text()
            assert "LTE:452-90:100:2000" in site_text, "a zone names its nearest site"
            assert requested == [], "the report loads nothing from the network"
        finally:
            browser.close()


def test_pdf_report_from_the_api_has_the_expected_pages(client: TestClient) -> None:
    _chromium()
    r = client.get(
        "/api/v1/reports/coverage",
        params={"park": "p1", "lang": "vi", "format": "pdf", **WINDOW},
        headers=headers("viewer-p1"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert pdf_pages(r.content) == EXPECTED_PAGES


def test_report_parameters_are_checked(client: TestClient) -> None:
    for params in ({"park": "p1", "lang": "fr"}, {"park": "p1", "format": "docx"}, {"lang": "en"}):
        r = client.get("/api/v1/reports/coverage", params=params, headers=headers("viewer-p1"))
        assert r.status_code == 422, params
    r = client.get("/api/v1/reports/coverage", params={"park": "p1"}, headers=headers("viewer-p2"))
    assert r.status_code == 403


def test_cli_writes_the_pdf_and_the_html(stores: tuple[Path, Path], tmp_path: Path) -> None:
    _chromium()
    config = tmp_path / "api.toml"
    ring = ", ".join(f"[{x}, {y}]" for x, y in P1_BOUNDARY)
    config.write_text(
        f'[backend]\ntype = "duckdb"\npath = "{stores[0]}"\n\n[api]\nregistry_path = "{stores[1]}"\n\n'
        f'[coverage.operators_by_plmn]\n"452-90" = "Alpha"\n\n'
        f'[[parks]]\nid = "p1"\nname = "Park one"\nboundary = [{ring}]\n'
    )
    common = ["report", "coverage", "--config", str(config), "--park", "p1", "--from", WINDOW["from"]]
    common += ["--to", WINDOW["to"]]
    assert main([*common, "--lang", "en", "--out", str(tmp_path / "r.pdf")]) == 0
    assert pdf_pages((tmp_path / "r.pdf").read_bytes()) == EXPECTED_PAGES
    assert main([*common, "--lang", "vi", "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Báo cáo vùng phủ sóng di động" in html and "Park one" in html
    assert main([*common, "--out", str(tmp_path / "r.docx")]) == 2
