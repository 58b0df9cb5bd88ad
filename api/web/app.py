"""The dashboard as a small ASGI app: the page, its assets and a ``config.json`` for the map."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR: Final = Path(__file__).parent / "static"


class DashboardSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the page needs to know about the map.

    Attributes:
        tile_url: an XYZ tile URL template (``https://.../{z}/{x}/{y}.png``), or empty for no
            tiles: the offline map (park boundaries, a scale bar, road lines when known).
        tile_attribution: attribution text required by the tile provider.
        center: ``[lat, lon]`` of the initial view before data arrives.
        zoom: initial zoom level.
    """

    tile_url: str = ""
    tile_attribution: str = ""
    center: tuple[float, float] = (20.82, 106.72)
    zoom: int = 12


def dashboard_settings(tile_url: str, tile_attribution: str) -> DashboardSettings:
    """The page's map settings from ``[api] tile_url`` / ``tile_attribution`` (``"none"``: offline)."""
    url = "" if tile_url == "none" else tile_url
    return DashboardSettings(tile_url=url, tile_attribution=tile_attribution if url else "")


def create_dashboard(settings: DashboardSettings | None = None) -> Starlette:
    """The dashboard app, to be mounted at ``/dashboard`` by the API."""
    cfg = settings or DashboardSettings()

    async def config(_: Request) -> Response:
        return JSONResponse(msgspec.to_builtins(cfg), headers={"Cache-Control": "no-store"})

    async def root(request: Request) -> Response:
        return RedirectResponse(url=str(request.url).rstrip("/") + "/index.html")

    return Starlette(
        routes=[
            Route("/config.json", config),
            Route("/", root),
            Mount("/", app=StaticFiles(directory=STATIC_DIR, html=True), name="static"),
        ]
    )
