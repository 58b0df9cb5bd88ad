"""Print the report's HTML to PDF in headless Chromium, driven by Playwright.

Chromium is Debian's ``/usr/bin/chromium`` (or the first ``chromium`` / ``chromium-browser`` on the
PATH); Playwright's own downloaded browsers are not needed. The page is loaded from a string:
it holds everything (CSS, SVG) and the browser is started without network access to anything else.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

CHROMIUM_CANDIDATES: Final = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class PdfUnavailable(RuntimeError):
    """PDF output cannot work on this machine; the message says what to install."""


def find_chromium() -> str:
    """The Chromium executable; raises :class:`PdfUnavailable` naming the package to install."""
    for name in CHROMIUM_CANDIDATES:
        found = name if Path(name).is_file() else shutil.which(name)
        if found:
            return found
    raise PdfUnavailable(
        "PDF reports need Chromium, which is not installed: apt-get install chromium "
        "(or ask for format=html / --out report.html and print it from a browser)"
    )


def html_to_pdf(html: str, *, chromium: str | None = None) -> bytes:
    """The PDF (A4, backgrounds printed, CSS ``@page`` honoured) of a self-contained HTML page."""
    executable = chromium or find_chromium()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError as exc:
        raise PdfUnavailable(
            "PDF reports need the Playwright Python package: pip install playwright "
            "(Chromium itself comes from apt-get install chromium; no playwright install needed)"
        ) from exc
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page()
                page.set_content(html, wait_until="load")
                pdf: bytes = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise PdfUnavailable(f"Chromium ({executable}) could not print the report: {exc.message}") from exc
    return pdf
