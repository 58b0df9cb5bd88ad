"""The dashboard as a small ASGI app: the page, its assets and a ``config.json`` for the map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from settings.errors import ConfigError

STATIC_DIR: Final = Path(__file__).parent / "static"


class DashboardSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the page needs to know about the map.

    Attributes:
        tile_url: an XYZ tile URL template (``https://.../{z}/{x}/{y}.png``), or empty for no
            tiles: the offline map (park boundaries, a scale bar, road lines when known).
        tile_attribution: attribution text required by the tile provider.
        center: ``[lat, lon]`` of the initial view before data arrives.
        zoom: initial zoom level.
        roads: a GeoJSON FeatureCollection of road lines for the offline map, or None.
    """

    tile_url: str = ""
    tile_attribution: str = ""
    center: tuple[float, float] = (20.82, 106.72)
    zoom: int = 12
    roads: dict[str, Any] | None = None


def dashboard_settings(tile_url: str, tile_attribution: str, road_lines_file: str = "") -> DashboardSettings:
    """The page's map settings from ``[api] tile_url``, ``tile_attribution`` (``"none"``: offline)
    and ``road_lines_file``.

    Raises:
        ConfigError: the road lines file is unreadable or holds no GeoJSON lines.
    """
    url = "" if tile_url == "none" else tile_url
    roads = load_road_lines(road_lines_file) if road_lines_file else None
    return DashboardSettings(tile_url=url, tile_attribution=tile_attribution if url else "", roads=roads)


_LINE_TYPES: Final = ("LineString", "MultiLineString")


def load_road_lines(path: str) -> dict[str, Any]:
    """The LineString features of a GeoJSON file as a FeatureCollection.

    Raises:
        ConfigError: the file is unreadable, not JSON, or holds something other than lines.
    """
    where = f"api.road_lines_file {path!r}"
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}; give a readable GeoJSON file or leave the key empty") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or not features:
        raise ConfigError(f"{where}: not a GeoJSON FeatureCollection with features")
    for i, f in enumerate(features):
        geom = f.get("geometry") if isinstance(f, dict) else None
        if not isinstance(geom, dict) or geom.get("type") not in _LINE_TYPES:
            raise ConfigError(f"{where}: feature {i} is not a LineString or MultiLineString")
    return {"type": "FeatureCollection", "features": features}


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
