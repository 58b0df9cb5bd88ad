"""``/docs`` renders in Chromium with every request answered by the API itself."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Server

pytestmark = pytest.mark.integration


def test_swagger_ui_renders_offline(browser: Any, server: Server) -> None:
    page = browser.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.base) else foreign.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Anything that is not the API fails, as on a network without internet access.
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(server.base) else route.abort(),
    )
    page.goto(f"{server.base}/docs")
    title = page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "parkwatch API" in title.inner_text()
    assert page.locator(".opblock").count() > 20
    page.close()
    assert foreign == [] and errors == []
