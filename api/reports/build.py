"""One call from the read services to the report's bytes, shared by the API and ``parkwatch report``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from api.reports.data import gather
from api.reports.html import render_html
from api.reports.i18n import Lang
from api.reports.pdf import html_to_pdf
from api.services import Services
from storage.query import Scope

ReportFormat = Literal["html", "pdf"]


def coverage_report(
    services: Services,
    *,
    park: str,
    park_name: str,
    scope: Scope,
    resolution: int,
    max_class: str,
    lang: Lang,
    fmt: ReportFormat,
    generated: datetime | None = None,
) -> bytes:
    """The coverage report of ``park`` over ``scope``'s window as HTML (UTF-8) or PDF bytes.

    Raises :class:`api.reports.pdf.PdfUnavailable` for PDF without Chromium or Playwright.
    """
    data = gather(
        services,
        park=park,
        park_name=park_name,
        scope=scope,
        resolution=resolution,
        max_class=max_class,
        generated=generated or datetime.now(UTC),
    )
    html = render_html(data, lang)
    return html.encode() if fmt == "html" else html_to_pdf(html)
