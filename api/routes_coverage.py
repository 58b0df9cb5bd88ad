"""Coverage routes: cells, dead zones, survey gaps, summary, and their GIS exports."""

from __future__ import annotations

from typing import Any

import h3
import msgspec
import numpy as np
from fastapi import APIRouter, Response

from analytics.coverage import cell_area_m2, cell_features, cell_polygon, cell_str
from analytics.deadzones import ZoneKind
from api.auth import Principal
from api.deps import (
    FEATURE_COLLECTION,
    GEOJSON_OK,
    Context,
    GeoJSONResponse,
    Planner,
    Viewer,
    json_response,
    page,
)
from api.errors import NotFound
from api.exports import MEDIA_TYPES, ExportFormat, feature_collection, iso_ms, to_csv, to_kml
from api.params import (
    BboxQ,
    DeadZoneMaxClass,
    FromQ,
    OffsetQ,
    OperatorQ,
    ParkQ,
    ResolutionQ,
    TechQ,
    ToQ,
    limit_query,
)
from storage.query import Scope

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


UNKNOWN_PARK: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "unknown park: neither configured nor with any cellular reading",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}
GEOJSON_PARK_OK: dict[int | str, dict[str, Any]] = {**GEOJSON_OK, **UNKNOWN_PARK}
EXPORT_PARK_OK: dict[int | str, dict[str, Any]] = {**EXPORT_OK, **UNKNOWN_PARK}


def build(ctx: Context) -> APIRouter:
    """The routes of this module over ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    settings, service = ctx.settings, ctx.service
    cov = settings.coverage
    scope, res = ctx.scope, ctx.res
    max_page = settings.api.max_page_size
    limit_1000 = limit_query(1000, max_page_size=max_page)
    limit_100 = limit_query(100, max_page_size=max_page)

    def cscope(p: Principal, park: str | None, start: Any, end: Any, **filters: Any) -> Scope:
        """:meth:`Context.scope`, and a 404 for a park that is neither configured nor measured."""
        sc = scope(p, park, start, end, **filters)
        if park is not None and not service.park_known(park):
            raise NotFound(
                f"unknown park {park!r}: it is not in the configuration and has no cellular "
                "readings; GET /api/v1/coverage/operators lists the parks with data"
            )
        return sc

    def latest(sc: Scope, empty: bool) -> dict[str, Any]:
        """When the newest reading of the selection is (ever), and why an empty answer is empty."""
        ms = service.latest_ms(sc)
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

    # -- coverage -----------------------------------------------------------------------------

    def _with_state(feats: list[dict[str, Any]], sc: Scope, r: int) -> list[dict[str, Any]]:
        """Each cell's dead-zone state and confidence (the test of docs/coverage.md)."""
        a = service.assessment(sc, r, cov.dead_zone_max_class)
        row_of = a.lookup()
        for f in feats:
            pr = f["properties"]
            i = row_of.get((pr["park"], int(h3.str_to_int(pr["h3"])), pr["operator"], pr["tech"]))
            pr["state"] = "uncertain" if i is None else str(a.state[i])
            pr["cause"] = None if i is None else a.cause[i]
            pr["confidence"] = None if i is None else float(a.confidence[i])
        return feats

    def _cells(sc: Scope, r: int) -> list[dict[str, Any]]:
        c = service.coverage(sc, r)
        return _with_state(cell_features(c.stats, c.classes, min_samples=c.min_samples), sc, r)

    @v1.get(
        "/coverage/cells",
        tags=["coverage"],
        response_class=GeoJSONResponse,
        responses=GEOJSON_PARK_OK,
        summary="Coverage grid per H3 cell, operator and technology (GeoJSON).",
    )
    def coverage_cells(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        r = res(resolution)
        # Features are built for the requested page only: the polygons are the costly part.
        c = service.coverage(sc, r)
        pg = page(range(len(c.stats)), limit, offset)
        rows = np.asarray(pg.pop("items"), dtype=np.int64)
        feats = _with_state(
            cell_features(c.stats.take(rows), c.classes[rows], min_samples=c.min_samples), sc, r
        )
        fc = feature_collection(
            feats,
            resolution=r,
            window=[sc.start.isoformat(), sc.end.isoformat()],
            **latest(sc, not pg["total"]),
            **pg,
        )
        return json_response(fc, geo=True)

    def _zones(sc: Scope, r: int, max_class: str, kind: ZoneKind = "dead") -> list[dict[str, Any]]:
        return [z.feature(i + 1) for i, z in enumerate(service.dead_zones(sc, r, max_class, kind))]

    @v1.get(
        "/coverage/dead-zones",
        tags=["coverage"],
        response_class=GeoJSONResponse,
        responses=GEOJSON_PARK_OK,
        summary="Dead zones ranked by area (GeoJSON).",
    )
    def coverage_dead_zones(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        max_class: DeadZoneMaxClass | None = None,
        limit: int = limit_100,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        r = res(resolution)
        pg = page(
            _zones(sc, r, max_class or cov.dead_zone_max_class),
            limit,
            offset,
        )
        feats = pg.pop("items")
        fc = feature_collection(
            feats,
            resolution=r,
            max_class=max_class or cov.dead_zone_max_class,
            window=[sc.start.isoformat(), sc.end.isoformat()],
            **latest(sc, not pg["total"]),
            **pg,
        )
        return json_response(fc, geo=True)

    @v1.get(
        "/coverage/interference-zones",
        tags=["coverage"],
        response_class=GeoJSONResponse,
        responses=GEOJSON_PARK_OK,
        summary="Interference zones (RSRP fine, SINR below the floor at the stated confidence), ranked by area.",
    )
    def coverage_interference_zones(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        limit: int = limit_100,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        r = res(resolution)
        zones = _zones(sc, r, cov.dead_zone_max_class, "interference")
        pg = page(zones, limit, offset)
        feats = pg.pop("items")
        fc = feature_collection(
            feats,
            resolution=r,
            window=[sc.start.isoformat(), sc.end.isoformat()],
            **latest(sc, not pg["total"]),
            **pg,
        )
        return json_response(fc, geo=True)

    @v1.get(
        "/coverage/gaps",
        tags=["coverage"],
        response_class=GeoJSONResponse,
        responses=GEOJSON_PARK_OK,
        summary="Survey gaps: park cells without samples (GeoJSON).",
    )
    def coverage_gaps(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        resolution: ResolutionQ = None,
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech)
        r = res(resolution)
        gaps = service.gaps(sc, r)
        pg = page(gaps, limit, offset)
        feats = [
            {
                "type": "Feature",
                "id": f"{pk}:{cell_str(c)}",
                "geometry": {"type": "Polygon", "coordinates": [[list(x) for x in cell_polygon(c)]]},
                "properties": {"park": pk, "h3": cell_str(c), "area_m2": round(cell_area_m2(c), 1)},
            }
            for pk, c in pg.pop("items")
        ]
        total_area = sum(cell_area_m2(c) for _, c in gaps)
        return json_response(
            feature_collection(feats, resolution=r, gap_area_m2=round(total_area, 1), **pg), geo=True
        )

    @v1.get(
        "/coverage/summary",
        tags=["coverage"],
        summary="Coverage per park, operator and technology, with change.",
        responses=UNKNOWN_PARK,
    )
    def coverage_summary(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        resolution: ResolutionQ = None,
        max_class: DeadZoneMaxClass | None = None,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech)
        r = res(resolution)
        items = service.summary(sc, r, max_class or cov.dead_zone_max_class)
        return json_response(
            {
                "window": [sc.start.isoformat(), sc.end.isoformat()],
                "resolution": r,
                **latest(sc, not items),
                "items": items,
            }
        )

    @v1.get(
        "/coverage/operators",
        tags=["coverage"],
        summary="Operators and technologies with readings, per park (any time), with their latest reading.",
        responses=UNKNOWN_PARK,
    )
    def coverage_operators(p: Viewer, park: ParkQ = None) -> Response:
        # Every stored reading counts: this is where a planner finds what to ask for.
        sc = cscope(p, park, None, None)
        rows = service.networks(sc, timed=False)
        parks: dict[str, dict[str, Any]] = {}
        for r in rows.rows():
            entry = parks.setdefault(r["park"], {"park": r["park"], "latest": None, "networks": []})
            entry["networks"].append(
                {
                    "operator": r["operator"],
                    "tech": r["tech"],
                    "samples": r["samples"],
                    "latest": iso_ms(r["last_ms"]),
                }
            )
            entry["latest"] = max(entry["latest"] or "", iso_ms(r["last_ms"]))
        for entry in parks.values():
            entry["operators"] = sorted({n["operator"] for n in entry["networks"]})
            entry["technologies"] = sorted({n["tech"] for n in entry["networks"]})
        return json_response({"items": [parks[k] for k in sorted(parks)]})

    # -- exports ------------------------------------------------------------------------------

    def _export(features: list[dict[str, Any]], fmt: ExportFormat, name: str, sc: Scope) -> Response:
        info = latest(sc, not features)
        if fmt == "geojson":
            body = msgspec.json.encode(
                feature_collection(features, window=[sc.start.isoformat(), sc.end.isoformat()], **info)
            )
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

    @v1.get(
        "/export/cells",
        tags=["exports"],
        response_class=Response,
        responses=EXPORT_PARK_OK,
        summary="Coverage cells as GeoJSON, CSV or KML.",
    )
    def export_cells(
        p: Planner,
        format: ExportFormat = "geojson",
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        return _export(_cells(sc, res(resolution)), format, "cells", sc)

    @v1.get(
        "/export/dead-zones",
        tags=["exports"],
        response_class=Response,
        responses=EXPORT_PARK_OK,
        summary="Dead zones as GeoJSON, CSV or KML.",
    )
    def export_dead_zones(
        p: Planner,
        format: ExportFormat = "geojson",
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        max_class: DeadZoneMaxClass | None = None,
    ) -> Response:
        sc = cscope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        return _export(
            _zones(sc, res(resolution), max_class or cov.dead_zone_max_class), format, "dead-zones", sc
        )

    return v1
