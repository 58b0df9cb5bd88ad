"""Parks and gateway sites as data: ``/api/v1/parks`` and ``/api/v1/parks/{park}/gateways``.

Stored in the registry file (:mod:`storage.places`), where ``parkwatch park`` and ``parkwatch
gateway`` write too and from which the ingester reads gateway positions and known parks. The
static ``[[parks]]`` of the API config seed the table when the API starts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import BODY_UNREADABLE, Admin, Context, Engineer, GwPath, Problem, Viewer
from api.errors import BadRequest, NotFound
from contract.ids import ID
from storage.places import GatewaySite, ParkRecord, PlaceError, Places, boundary_from_geojson

ParkPath = Annotated[
    str, Path(pattern=ID.regex, max_length=ID.max_length, description=f"Park id: {ID.rule}.")
]


class ParkIn(BaseModel):
    """A park as sent by a client."""

    name: str = Field(default="", max_length=200)
    boundary: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon (or a Feature holding one), [lon, lat] order."
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone, e.g. Asia/Ho_Chi_Minh.")


class GatewaySiteIn(BaseModel):
    """A gateway's place as sent by a client (no position: a mobile gateway)."""

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    description: str = Field(default="", max_length=200)


PARK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such park (or gateway site) in the registry"}
}


def build(ctx: Context) -> APIRouter:
    """The park and gateway-site routes over the registry file of ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    places = Places(ctx.registry.path)
    places.seed_parks(
        [
            ParkRecord(id=p.id, name=p.name, boundary=tuple((x, y) for x, y in p.boundary))
            for p in ctx.settings.parks
        ]
    )

    def _park_or_404(park: str) -> ParkRecord:
        found = places.park(park)
        if found is None:
            raise NotFound(f"park {park!r} is not stored: PUT /api/v1/parks/{park} creates it")
        return found

    @v1.get("/parks", tags=["parks"], summary="Parks stored in the registry (those this key may see).")
    def list_parks(p: Viewer) -> dict[str, Any]:
        items = [r.to_dict() for r in places.parks() if p.parks is None or r.id in p.parks]
        return {"total": len(items), "items": items}

    @v1.get("/parks/{park}", tags=["parks"], responses=PARK_NOT_FOUND, summary="One park.")
    def get_park(p: Viewer, park: ParkPath) -> dict[str, Any]:
        p.scope_parks(park)
        return _park_or_404(park).to_dict()

    @v1.put("/parks/{park}", tags=["parks"], responses=BODY_UNREADABLE, summary="Create or replace a park.")
    def put_park(p: Admin, park: ParkPath, body: ParkIn) -> dict[str, Any]:
        p.scope_parks(park)
        try:
            boundary = boundary_from_geojson(body.boundary) if body.boundary is not None else ()
            created = places.park(park) is None
            stored = places.put_park(
                ParkRecord(id=park, name=body.name, boundary=boundary, timezone=body.timezone)
            )
        except PlaceError as exc:
            raise BadRequest(str(exc)) from exc
        return {**stored.to_dict(), "created": created}

    @v1.delete(
        "/parks/{park}",
        tags=["parks"],
        responses=PARK_NOT_FOUND,
        summary="Delete a park and its gateway sites (not its data).",
    )
    def delete_park(p: Admin, park: ParkPath) -> dict[str, Any]:
        p.scope_parks(park)
        if not places.delete_park(park):
            raise NotFound(f"park {park!r} is not stored")
        return {"deleted": park}

    @v1.get("/parks/{park}/gateways", tags=["parks"], summary="Gateway sites of a park.")
    def list_sites(p: Viewer, park: ParkPath) -> dict[str, Any]:
        p.scope_parks(park)
        items = [g.to_dict() for g in places.gateways(park)]
        return {"total": len(items), "items": items}

    @v1.put(
        "/parks/{park}/gateways/{gw}",
        tags=["parks"],
        responses={**BODY_UNREADABLE, **PARK_NOT_FOUND},
        summary="Create or replace a gateway's site: its fixed position feeds the H3 cell of its readings.",
    )
    def put_site(p: Engineer, park: ParkPath, gw: GwPath, body: GatewaySiteIn) -> dict[str, Any]:
        p.scope_parks(park)
        _park_or_404(park)
        try:
            stored = places.put_gateway(
                GatewaySite(gw=gw, park=park, lat=body.lat, lon=body.lon, description=body.description)
            )
        except PlaceError as exc:
            raise BadRequest(str(exc)) from exc
        return stored.to_dict()

    @v1.delete(
        "/parks/{park}/gateways/{gw}",
        tags=["parks"],
        responses=PARK_NOT_FOUND,
        summary="Delete a gateway's site.",
    )
    def delete_site(p: Engineer, park: ParkPath, gw: GwPath) -> dict[str, Any]:
        p.scope_parks(park)
        if not any(g.gw == gw for g in places.gateways(park)) or not places.delete_gateway(gw):
            raise NotFound(f"gateway {gw!r} has no site in park {park!r}")
        return {"deleted": gw}

    return v1
