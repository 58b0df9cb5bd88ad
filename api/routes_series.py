"""Chart series for the built-in dashboard: factory KPIs per time bucket, a gateway's history.

``GET /api/v1/factory/oee/series`` and ``GET /api/v1/factory/energy/series`` take the window of
the table routes (``park``, ``from``, ``to``) plus ``level`` and an optional ``step_s``;
``GET /api/v1/gateways/{gw}/history`` the status reports of one gateway in the window. The logic
is in :mod:`api.services.series`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api import models
from api.deps import NOT_FOUND, Ctx, GwPath, Viewer, WindowSelection, json_response
from api.errors import BadRequest, NotFound
from api.services.series import (
    MAX_BUCKETS,
    MAX_STATUS_POINTS,
    SeriesError,
    energy_series,
    oee_series,
    status_history,
    step_for,
)

router = APIRouter(prefix="/api/v1")

StepQ = Annotated[
    int | None,
    Query(
        ge=60,
        le=7 * 86400,
        description=f"Bucket length in seconds (at most {MAX_BUCKETS} buckets per window); "
        "default: a round step (1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, 1, 2, 7 days) making at most 24 buckets.",
    ),
]


def _step(start: datetime, end: datetime, step_s: int | None) -> int:
    try:
        return step_for(start, end, step_s)
    except SeriesError as exc:
        raise BadRequest(str(exc)) from exc


@router.get(
    "/factory/oee/series",
    tags=["factory"],
    summary="Availability, performance, quality and OEE per time bucket and line (or factory, park).",
    responses=models.ok(models.OeeSeries, "One series per group, one point per bucket."),
)
def factory_oee_series(
    p: Viewer,
    ctx: Ctx,
    sel: WindowSelection,
    level: Literal["line", "factory", "park"] = "line",
    step_s: StepQ = None,
) -> Response:
    sc = sel.scope
    step = _step(sc.start, sc.end, step_s)
    items = oee_series(ctx.services.factory, sc, level, step)
    return json_response(models.OeeSeries(level=level, step_s=step, window=sel.window, items=items))


@router.get(
    "/factory/energy/series",
    tags=["factory"],
    summary="Energy (kWh) and peak demand (kW) per time bucket and factory (or line, park).",
    responses=models.ok(models.EnergySeries, "One series per group, one point per bucket."),
)
def factory_energy_series(
    p: Viewer,
    ctx: Ctx,
    sel: WindowSelection,
    level: Literal["line", "factory", "park"] = "factory",
    step_s: StepQ = None,
) -> Response:
    sc = sel.scope
    step = _step(sc.start, sc.end, step_s)
    items = energy_series(ctx.services.factory, sc, level, step)
    return json_response(
        models.EnergySeries(
            level=level,
            step_s=step,
            demand_interval_s=ctx.settings.factory.demand_interval_s,
            window=sel.window,
            items=items,
        )
    )


@router.get(
    "/gateways/{gw}/history",
    tags=["fleet"],
    summary="One gateway's status reports in the window: state, backlog, buffer fill, uplink signal.",
    responses={**models.ok(models.GatewayHistory, "The reports, oldest first."), **NOT_FOUND},
)
def gateway_history(p: Viewer, ctx: Ctx, gw: GwPath, sel: WindowSelection) -> Response:
    found = status_history(ctx.services.backend, sel.scope, gw)
    if not found:
        raise NotFound(f"no status reports of gateway {gw!r} in this window visible to this key")
    if len(found) > 1:
        raise BadRequest(f"gateway id {gw!r} exists in parks {sorted(found)}: add ?park=")
    ((park, (total, items)),) = found.items()
    return json_response(
        models.GatewayHistory(
            park=park, gw=gw, window=sel.window, total=total, max_points=MAX_STATUS_POINTS, items=items
        )
    )
