"""Coverage routes: cells, dead zones, survey gaps, summary, and their GIS exports."""

from __future__ import annotations

from typing import Any

import h3
import msgspec
import numpy as np
from fastapi import APIRouter, Response
from msgspec import UNSET

from analytics.coverage import cell_area_m2, cell_features, cell_polygon, cell_str
from analytics.deadzones import ZoneKind
from api import models
from api.deps import (
    FEATURE_COLLECTION,
    GEOJSON_OK,
    CoverageArea,
    CoverageSelection,
    Ctx,
    GeoJSONResponse,
    Page100,
    Page1000,
    Paging,
    Planner,
    Selection,
    Viewer,
    json_response,
    parse_selection,
)
from api.exports import MEDIA_TYPES, ExportFormat, feature_collection, iso_ms, to_csv, to_kml
from api.params import DeadZoneMaxClass, ParkQ
from api.services import Services

EXPORT_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, as an attachment, in the requested `format`.",
        "headers": {
            "X-Parkwatch-Latest": {
                "description": "ISO 8601 time of the newest cellular reading of the selection (any time)",
                "schema": {"type": "string"},
            }
        },
        "content": {
            MEDIA_TYPES["geojson"]: {"schema": FEATURE_COLLECTION},
            MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
            MEDIA_TYPES["kml"]: {"schema": {"type": "string"}},
        },
    }
}


router = APIRouter(prefix="/api/v1")

UNKNOWN_PARK: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "unknown park: neither configured nor with any cellular reading",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}
GEOJSON_PARK_OK: dict[int | str, dict[str, Any]] = {**GEOJSON_OK, **UNKNOWN_PARK}
EXPORT_PARK_OK: dict[int | str, dict[str, Any]] = {**EXPORT_OK, **UNKNOWN_PARK}


def _latest(services: Services, sel: Selection, empty: bool) -> dict[str, Any]:
    """When the newest reading of the selection is (ever), and why an empty answer is empty."""
    sc = sel.scope
    ms = services.coverage.latest_ms(sc)
    out: dict[str, Any] = {"latest": iso_ms(ms) or None}
    if empty:
        window = f"{sc.start.isoformat()} – {sc.end.isoformat()}"
        if ms is None:
            out["message"] = (
                "no cellular readings for this park, operator and technology at all; "
                "GET /api/v1/coverage/operators lists what exists"
            )
        elif not sc.start.timestamp() * 1000 <= ms < sc.end.timestamp() * 1000:
            out["message"] = (
                f"nothing in the window {window}; the latest reading for this selection is "
                f"from {iso_ms(ms)}: move 'from'/'to' to include it"
            )
        else:
            out["message"] = f"nothing to report in the window {window} for this selection"
    return out


# -- coverage -------------------------------------------------------------------------------------


def _with_state(
    services: Services, feats: list[dict[str, Any]], sel: Selection, max_class: str
) -> list[dict[str, Any]]:
    """Each cell's dead-zone state and confidence (the test of docs/coverage.md)."""
    a = services.coverage.assessment(sel.scope, sel.resolution, max_class)
    row_of = a.lookup()
    for f in feats:
        pr = f["properties"]
        i = row_of.get((pr["park"], int(h3.str_to_int(pr["h3"])), pr["operator"], pr["tech"]))
        pr["state"] = "uncertain" if i is None else str(a.state[i])
        pr["cause"] = None if i is None else a.cause[i]
        pr["confidence"] = None if i is None else float(a.confidence[i])
    return feats


def _zones(ctx: Ctx, sel: Selection, max_class: str, kind: ZoneKind = "dead") -> list[dict[str, Any]]:
    zones = ctx.services.coverage.dead_zones(sel.scope, sel.resolution, max_class, kind)
    # Each zone's nearest cell site of its operator and technology, once sites were imported.
    return ctx.services.sites.annotate_zones([z.feature(i + 1) for i, z in enumerate(zones)])


@router.get(
    "/coverage/cells",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Coverage grid per H3 cell, operator and technology (GeoJSON).",
)
def coverage_cells(p: Viewer, ctx: Ctx, sel: CoverageArea, pg: Page1000) -> Response:
    services = ctx.services
    # Features are built for the requested page only: the polygons are the costly part.
    c = services.coverage.cells(sel.scope, sel.resolution)
    paged = pg.page(range(len(c.stats)))
    rows = np.asarray(paged.pop("items"), dtype=np.int64)

    def features() -> bytes:
        feats = _with_state(
            services,
            cell_features(c.stats.take(rows), c.classes[rows], min_samples=c.min_samples),
            sel,
            ctx.settings.coverage.dead_zone_max_class,
        )
        return msgspec.json.encode(feats)

    # A live view's page is the same for every request as of its end: built once.
    encoded = services.coverage.kept_if_live(
        ("cell-features", sel.scope, sel.resolution, pg.limit, pg.offset), sel.scope, features
    )
    fc = feature_collection(
        [],
        resolution=sel.resolution,
        window=sel.window,
        **sel.as_of,
        **_latest(services, sel, not paged["total"]),
        **paged,
    )
    return _with_features(fc, encoded)


def _with_features(fc: dict[str, Any], features_json: bytes) -> Response:
    """The GeoJSON answer ``fc`` (its ``features`` empty, the last member) with the features
    already encoded as a JSON array."""
    head = msgspec.json.encode(fc)
    tail = b'"features":[]}'
    if not head.endswith(tail):  # feature_collection puts the features last
        raise ValueError("the features must be the last member of the FeatureCollection")
    body = head[: -len(tail) + len(b'"features":')] + features_json + b"}"
    return Response(body, media_type="application/geo+json")


def _zone_answer(
    ctx: Ctx, sel: Selection, pg: Paging, dead_class: str, kind: ZoneKind, **extra: Any
) -> Response:
    """A page of dead or interference zones; ``dead_class`` is the widest class counted as dead."""
    paged = pg.page(_zones(ctx, sel, dead_class, kind))
    feats = paged.pop("items")
    fc = feature_collection(
        feats,
        resolution=sel.resolution,
        **extra,
        window=sel.window,
        **sel.as_of,
        **_latest(ctx.services, sel, not paged["total"]),
        **paged,
    )
    return json_response(fc, geo=True)


@router.get(
    "/coverage/dead-zones",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Dead zones ranked by area (GeoJSON).",
)
def coverage_dead_zones(
    p: Viewer, ctx: Ctx, sel: CoverageArea, pg: Page100, max_class: DeadZoneMaxClass | None = None
) -> Response:
    max_class = max_class or ctx.settings.coverage.dead_zone_max_class
    return _zone_answer(ctx, sel, pg, max_class, "dead", max_class=max_class)


@router.get(
    "/coverage/interference-zones",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Interference zones (RSRP fine, SINR below the floor at the stated confidence), ranked by area.",
)
def coverage_interference_zones(p: Viewer, ctx: Ctx, sel: CoverageArea, pg: Page100) -> Response:
    return _zone_answer(ctx, sel, pg, ctx.settings.coverage.dead_zone_max_class, "interference")


@router.get(
    "/coverage/gaps",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses=GEOJSON_PARK_OK,
    summary="Survey gaps: park cells without samples (GeoJSON).",
)
def coverage_gaps(p: Viewer, ctx: Ctx, sel: CoverageSelection, pg: Page1000) -> Response:
    gaps = ctx.services.coverage.gaps(sel.scope, sel.resolution)
    paged = pg.page(gaps)
    feats = [
        {
            "type": "Feature",
            "id": f"{pk}:{cell_str(c)}",
            "geometry": {"type": "Polygon", "coordinates": [[list(x) for x in cell_polygon(c)]]},
            "properties": {"park": pk, "h3": cell_str(c), "area_m2": round(cell_area_m2(c), 1)},
        }
        for pk, c in paged.pop("items")
    ]
    total_area = sum(cell_area_m2(c) for _, c in gaps)
    return json_response(
        feature_collection(
            feats,
            resolution=sel.resolution,
            gap_area_m2=round(total_area, 1),
            window=sel.window,
            **sel.as_of,
            **paged,
        ),
        geo=True,
    )


@router.get(
    "/coverage/summary",
    tags=["coverage"],
    summary="Coverage per park, operator and technology, with change.",
    responses={**models.ok(models.CoverageSummary, "Coverage per group in the window."), **UNKNOWN_PARK},
)
def coverage_summary(
    p: Viewer, ctx: Ctx, sel: CoverageSelection, max_class: DeadZoneMaxClass | None = None
) -> Response:
    items = ctx.services.coverage.summary(
        sel.scope, sel.resolution, max_class or ctx.settings.coverage.dead_zone_max_class
    )
    info = _latest(ctx.services, sel, not items)
    return json_response(
        models.CoverageSummary(
            window=sel.window,
            resolution=sel.resolution,
            latest=info["latest"],
            message=info.get("message", UNSET),
            items=items,
        )
    )


@router.get(
    "/coverage/operators",
    tags=["coverage"],
    summary="Operators and technologies with readings, per park (any time), with their latest reading.",
    responses={**models.ok(models.OperatorList, "Networks per park."), **UNKNOWN_PARK},
)
def coverage_operators(p: Viewer, ctx: Ctx, park: ParkQ = None) -> Response:
    # Every stored reading counts: this is where a planner finds what to ask for.
    sel = _known(ctx, p, park)
    return json_response(ctx.services.coverage.operators(sel.scope))


@router.get(
    "/operators",
    tags=["coverage"],
    summary="The same as /coverage/operators: operators and technologies seen per park.",
    responses={**models.ok(models.OperatorList, "Networks per park."), **UNKNOWN_PARK},
)
def operators(p: Viewer, ctx: Ctx, park: ParkQ = None) -> Response:
    return coverage_operators(p, ctx, park)


def _known(ctx: Ctx, p: Viewer, park: str | None) -> Selection:
    return parse_selection(ctx, p, park, None, None, known_park=True)


# -- exports --------------------------------------------------------------------------------------


def _export(
    services: Services, features: list[dict[str, Any]], fmt: ExportFormat, name: str, sel: Selection
) -> Response:
    info = _latest(services, sel, not features)
    if fmt == "geojson":
        body = msgspec.json.encode(feature_collection(features, window=sel.window, **info))
    elif fmt == "csv":
        body = to_csv(features).encode()
    else:
        body = to_kml(features, name=f"parkwatch {name}", description=info.get("message", "")).encode()
    ext = {"geojson": "geojson", "csv": "csv", "kml": "kml"}[fmt]
    headers = {"Content-Disposition": f'attachment; filename="parkwatch-{name}.{ext}"'}
    if info["latest"]:
        # An empty CSV has no room for it: the newest reading of the selection, for every format.
        headers["X-Parkwatch-Latest"] = info["latest"]
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/export/cells",
    tags=["exports"],
    response_class=Response,
    responses=EXPORT_PARK_OK,
    summary="Coverage cells as GeoJSON, CSV or KML.",
)
def export_cells(p: Planner, ctx: Ctx, sel: CoverageArea, format: ExportFormat = "geojson") -> Response:
    c = ctx.services.coverage.cells(sel.scope, sel.resolution)
    feats = _with_state(
        ctx.services,
        cell_features(c.stats, c.classes, min_samples=c.min_samples),
        sel,
        ctx.settings.coverage.dead_zone_max_class,
    )
    return _export(ctx.services, feats, format, "cells", sel)


@router.get(
    "/export/dead-zones",
    tags=["exports"],
    response_class=Response,
    responses=EXPORT_PARK_OK,
    summary="Dead zones as GeoJSON, CSV or KML.",
)
def export_dead_zones(
    p: Planner,
    ctx: Ctx,
    sel: CoverageArea,
    format: ExportFormat = "geojson",
    max_class: DeadZoneMaxClass | None = None,
) -> Response:
    zones = _zones(ctx, sel, max_class or ctx.settings.coverage.dead_zone_max_class)
    return _export(ctx.services, zones, format, "dead-zones", sel)
