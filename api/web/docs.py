"""The API's interactive docs, offline: Swagger UI at ``/docs`` from the vendored assets under
``static/vendor/swagger-ui`` (served at ``/docs-assets``), never from a CDN.

FastAPI's own pages load their scripts, styles and favicon from jsdelivr and fastapi.tiangolo.com,
so on an isolated plant network they stay blank; the API is built with ``docs_url=None`` and
``redoc_url=None`` and :func:`add_offline_docs` adds this one instead. ReDoc is left out: its
bundle loads its logo from cdn.redoc.ly whatever the options.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.web.app import STATIC_DIR

ASSETS_PATH: Final = "/docs-assets"


def _assets() -> Starlette:
    async def favicon(_: Request) -> Response:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    return Starlette(
        routes=[
            Route("/favicon.svg", favicon),
            Mount("/swagger-ui", app=StaticFiles(directory=STATIC_DIR / "vendor" / "swagger-ui")),
        ]
    )


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) from the vendored assets."""
    app.mount(ASSETS_PATH, _assets(), name="docs-assets")

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.svg",
        )
