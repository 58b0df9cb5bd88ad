"""Cell sites (``/api/v1/sites``), the best-server layer and dead-zone progress between periods."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response

from analytics.coverage import cell_polygon, cell_str
from analytics.zone_changes import STATUSES
from api.deps import (
    GEOJSON_OK,
    Admin,
    Ctx,
    GeoJSONResponse,
    NetworkSelection,
    Page1000,
    Viewer,
    error_response,
    json_response,
)
from api.errors import ApiError, Forbidden, NotFound, TooLarge
from api.exports import feature_collection
from api.params import DeadZoneMaxClass, ParkQ
from api.routes_coverage import GEOJSON_PARK_OK
from api.services.sites import previous_period
from storage.cell_sites import SiteFileError

MAX_SITES_BODY_BYTES: Final = 64 * 1024 * 1024
"""The largest OpenCelliD CSV one POST may carry (a country's list is a few tens of MB)."""

router = APIRouter(prefix="/api/v1")

PROBLEM: Final = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
IMPORT_REPORT: Final = {
    "type": "object",
    "required": ["rows", "added", "replaced", "refused", "errors"],
    "properties": {
        "rows": {"type": "integer", "description": "data rows read"},
        "added": {"type": "integer"},
        "replaced": {"type": "integer", "description": "sites already stored, now updated"},
        "refused": {"type": "integer"},
        "errors": {
            "type": "array",
            "description": "the first 100 refused rows",
            "items": {
                "type": "object",
                "required": ["line", "reason"],
                "properties": {"line": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
    },
}
SITES_OK: Final[dict[int | str, dict[str, Any]]] = {
    **GEOJSON_OK,
    404: {"description": "the park has no boundary to place sites near", "content": PROBLEM},
}


class InvalidCsv(ApiError):
    status = 400
    code = "invalid_csv"


# -- sites ------------------------------------------------------------------------------------------


@router.get(
    "/sites",
    tags=["sites"],
    response_class=GeoJSONResponse,
    responses=SITES_OK,
    summary="Imported cell sites near a park (or every one the key may see), as GeoJSON points.",
)
def list_sites(p: Viewer, ctx: Ctx, pg: Page1000, park: ParkQ = None) -> Response:
    sites = ctx.services.sites
    if park is not None:
        p.scope_parks(park)
        if sites.park_bbox(park) is None:
            raise NotFound(
                f"park {park!r} has no boundary, so no sites can be placed near it: "
                f"PUT /api/v1/parks/{park} with a boundary"
            )
        found = sites.sites([park])
    else:
        scoped = p.scope_parks(None)
        found = sites.sites(None if scoped is None else list(scoped))
    paged = pg.page(found)
    feats = sites.site_features(paged.pop("items"))
    margin = ctx.settings.coverage.site_margin_m
    return json_response(feature_collection(feats, park=park, margin_m=margin, **paged), geo=True)


@router.post(
    "/sites",
    tags=["sites"],
    summary="Import cell sites from an OpenCelliD CSV body (text/csv); bad rows are listed, good ones kept.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
    responses={
        200: {
            "description": "What was stored and refused.",
            "content": {"application/json": {"schema": IMPORT_REPORT}},
        },
        400: {
            "description": "no row could be stored (the errors say why) or the header is not OpenCelliD's",
            "content": PROBLEM,
        },
        413: {"description": "body larger than 64 MiB: split the file", "content": PROBLEM},
    },
)
async def import_sites(p: Admin, ctx: Ctx, request: Request) -> Response:
    if p.parks is not None:
        raise Forbidden("cell sites are not per park: importing them needs an admin key for every park")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_SITES_BODY_BYTES:
        raise TooLarge("the CSV is larger than 64 MiB: split it and send the parts one by one")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SITES_BODY_BYTES:
            raise TooLarge("the CSV is larger than 64 MiB: split it and send the parts one by one")
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidCsv(
            f"the body is not UTF-8 text ({exc.reason} at byte {exc.start}): send the CSV as UTF-8"
        ) from exc
    try:
        report = ctx.services.sites.import_csv(text)
    except SiteFileError as exc:
        raise InvalidCsv(str(exc)) from exc
    if report.added + report.replaced == 0:
        detail = "the body has no rows" if report.rows == 0 else "no row could be stored: fix the rows listed"
        return error_response(400, "invalid_csv", detail, **report.as_dict())
    return json_response(report.as_dict())


# -- best server ------------------------------------------------------------------------------------


@router.get(
    "/coverage/best-server",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Best server per H3 cell (highest median RSRP) and the servers within 5 dB of it (pilot pollution).",
)
def best_server(p: Viewer, ctx: Ctx, sel: NetworkSelection, pg: Page1000) -> Response:
    rows = ctx.services.sites.best_server(sel.scope, sel.resolution)
    paged = pg.page(rows)
    feats = []
    for r in paged.pop("items"):
        h = cell_str(r.h3)
        feats.append(
            {
                "type": "Feature",
                "id": f"{r.park}:{r.operator}:{r.tech}:{h}",
                "geometry": {"type": "Polygon", "coordinates": [[list(x) for x in cell_polygon(r.h3)]]},
                "properties": {
                    "cell": h,
                    "h3": h,
                    "park": r.park,
                    "operator": r.operator,
                    "tech": r.tech,
                    "server": r.best.server,
                    "server_rsrp_median_dbm": r.best.rsrp_median_dbm,
                    "server_samples": r.best.samples,
                    "servers_within_5db": [s.server for s in r.within],
                    "servers": [
                        {"server": s.server, "rsrp_median_dbm": s.rsrp_median_dbm, "samples": s.samples}
                        for s in r.servers
                    ],
                    "pilot_pollution": r.pilot_pollution,
                },
            }
        )
    polluted = sum(r.pilot_pollution for r in rows)
    return json_response(
        feature_collection(
            feats, resolution=sel.resolution, window=sel.window, pilot_polluted_cells=polluted, **paged
        ),
        geo=True,
    )


# -- zone progress ----------------------------------------------------------------------------------


@router.get(
    "/coverage/zone-changes",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Dead zones of the window against the period of equal length before: new, persisting, "
    "shrunk, grown, resolved or not re-surveyed.",
)
def zone_changes(
    p: Viewer, ctx: Ctx, sel: NetworkSelection, pg: Page1000, max_class: DeadZoneMaxClass | None = None
) -> Response:
    changes = ctx.services.sites.zone_changes(
        sel.scope, sel.resolution, max_class or ctx.settings.coverage.dead_zone_max_class
    )
    counts = {s: 0 for s in STATUSES}
    for c in changes:
        counts[c.status] += 1
    prev = previous_period(sel.scope)
    paged = pg.page(changes)
    feats = [c.feature() for c in paged.pop("items")]
    return json_response(
        feature_collection(
            feats,
            resolution=sel.resolution,
            window=sel.window,
            previous_window=[prev.start.isoformat(), prev.end.isoformat()],
            counts=counts,
            **paged,
        ),
        geo=True,
    )
