"""``/docs`` loads every asset from the API itself: no CDN, no external host."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def _urls(html: str) -> list[str]:
    found = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert found, html[:500]
    return found


def test_swagger_ui_references_only_local_assets(client: TestClient) -> None:
    for page in ("/docs",):
        resp = client.get(page)
        assert resp.status_code == 200, resp.text
        assert "//" not in "".join(u for u in _urls(resp.text) if not u.startswith("/")), page
        for url in _urls(resp.text):
            assert url.startswith("/") and not url.startswith("//"), (page, url)
            assert client.get(url).status_code == 200, (page, url)
        assert "cdn.jsdelivr.net" not in resp.text and "fonts.googleapis" not in resp.text


def test_vendored_assets_are_served_with_their_licences(client: TestClient) -> None:
    css = client.get("/docs-assets/swagger-ui/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "Apache License" in client.get("/docs-assets/swagger-ui/LICENSE").text
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs-assets/../app.py").status_code == 404
