"""Predicted coverage (a separate layer from the measured cells) and survey plans."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from analytics.survey_plan import to_geojson, to_gpx
from api.deps import (
    GEOJSON_OK,
    Ctx,
    GeoJSONResponse,
    NetworkSelection,
    Page1000,
    Viewer,
    json_response,
)
from api.exports import feature_collection
from api.params import DeadZoneMaxClass
from api.routes_coverage import UNKNOWN_PARK
from api.services.prediction import pooled_validation

router = APIRouter(prefix="/api/v1")

WaypointsQ = Annotated[int, Query(ge=1, le=200, description="Waypoints per plan (the best-ranked cells).")]
GPX_MEDIA_TYPE = "application/gpx+xml"


@router.get(
    "/coverage/predicted",
    tags=["coverage"],
    response_class=GeoJSONResponse,
    responses={**GEOJSON_OK, **UNKNOWN_PARK},
    summary="Predicted RSRP with a 90 % interval in unmeasured cells of the park and a margin (GeoJSON).",
)
def coverage_predicted(
    p: Viewer, ctx: Ctx, sel: NetworkSelection, pg: Page1000, max_class: DeadZoneMaxClass | None = None
) -> Response:
    max_class = max_class or ctx.settings.coverage.dead_zone_max_class
    layers = ctx.services.prediction.layers(sel.scope, sel.resolution, max_class)
    feats: list[dict[str, Any]] = [f for layer in layers for f in layer.features()]
    paged = pg.page(feats)
    extra: dict[str, Any] = {}
    if not layers:
        extra["message"] = (
            "no park, operator and technology of this selection has enough measured cells to predict from; "
            "widen 'from'/'to' or survey first (GET /api/v1/coverage/gaps)"
        )
    fc = feature_collection(
        paged.pop("items"),
        resolution=sel.resolution,
        window=sel.window,
        max_class=max_class,
        validation=pooled_validation(layers).as_dict(),
        layers=[{**layer.meta(), "validation": layer.validation.as_dict()} for layer in layers],
        **extra,
        **paged,
    )
    return json_response(fc, geo=True)


@router.get(
    "/coverage/survey-plan",
    tags=["coverage"],
    response_class=Response,
    responses={
        200: {
            "description": "The plan: GeoJSON waypoints and route, or GPX 1.1 for drive-test apps.",
            "content": {
                "application/geo+json": {
                    "schema": GEOJSON_OK[200]["content"]["application/geo+json"]["schema"]
                },
                GPX_MEDIA_TYPE: {"schema": {"type": "string"}},
            },
        },
        **{k: v for k, v in GEOJSON_OK.items() if k != 200},
        **UNKNOWN_PARK,
    },
    summary="Where to drive next: the cells a measurement would change most, as waypoints and a route.",
)
def coverage_survey_plan(
    p: Viewer,
    ctx: Ctx,
    sel: NetworkSelection,
    format: Literal["geojson", "gpx"] = "geojson",
    waypoints: WaypointsQ = 25,
    max_class: DeadZoneMaxClass | None = None,
) -> Response:
    max_class = max_class or ctx.settings.coverage.dead_zone_max_class
    plans = ctx.services.prediction.plans(sel.scope, sel.resolution, max_class, waypoints)
    if format == "gpx":
        return Response(
            to_gpx(plans).encode(),
            media_type=GPX_MEDIA_TYPE,
            headers={"Content-Disposition": 'attachment; filename="parkwatch-survey-plan.gpx"'},
        )
    body = to_geojson(plans)
    body.update(resolution=sel.resolution, window=sel.window, max_class=max_class)
    if not plans:
        body["message"] = (
            "no park, operator and technology of this selection has enough measured cells to plan from; "
            "survey first (GET /api/v1/coverage/gaps lists the unmeasured cells)"
        )
    return json_response(body, geo=True)
