"""Operations routes: broadband, factory KPIs and the gateway fleet (alarms: :mod:`api.alarms.routes`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Response
from msgspec import UNSET

from api import models
from api.auth import Principal
from api.deps import NOT_FOUND, Ctx, GwPath, Page1000, Viewer, WindowSelection, json_response
from api.errors import BadRequest, NotFound
from api.params import GwQ, ParkQ
from storage.query import Scope

router = APIRouter(prefix="/api/v1")

# -- broadband, factory --------------------------------------------------------------------------


@router.get(
    "/broadband/summary",
    tags=["broadband"],
    summary="Broadband quality per gateway or park vs targets.",
    responses=models.ok(models.BroadbandSummary, "Broadband quality per gateway or park."),
)
def broadband_summary(
    p: Viewer, ctx: Ctx, sel: WindowSelection, gw: GwQ = None, by: Literal["gw", "park"] = "gw"
) -> Response:
    items = ctx.services.broadband.summary(replace(sel.scope, gw=gw), by)
    return json_response(models.BroadbandSummary(window=sel.window, items=items))


@router.get(
    "/factory/machines",
    tags=["factory"],
    summary="Machines with production figures in the window.",
    responses=models.ok(models.MachinePage, "One page of machines."),
)
def factory_machines(p: Viewer, ctx: Ctx, sel: WindowSelection, pg: Page1000) -> Response:
    return json_response(models.MachinePage(**pg.page(ctx.services.factory.machine_list(sel.scope))))


@router.get(
    "/factory/oee",
    tags=["factory"],
    summary="Availability, performance, quality and OEE.",
    responses=models.ok(models.OeeReport, "One page of groups at the level."),
)
def factory_oee(
    p: Viewer,
    ctx: Ctx,
    sel: WindowSelection,
    pg: Page1000,
    level: Literal["machine", "line", "factory", "park"] = "line",
) -> Response:
    out = pg.page(ctx.services.factory.oee(sel.scope, level))
    return json_response(models.OeeReport(level=level, window=sel.window, **out))


@router.get(
    "/factory/energy",
    tags=["factory"],
    summary="Energy (kWh) and peak demand (kW).",
    responses=models.ok(models.EnergyReport, "One page of groups at the level."),
)
def factory_energy(
    p: Viewer,
    ctx: Ctx,
    sel: WindowSelection,
    pg: Page1000,
    level: Literal["meter", "line", "factory", "park"] = "factory",
) -> Response:
    out = pg.page(ctx.services.factory.energy(sel.scope, level))
    return json_response(models.EnergyReport(level=level, window=sel.window, **out))


# -- fleet ----------------------------------------------------------------------------------------


def _fleet(ctx: Ctx, p: Principal, park: str | None, gw: str | None = None) -> list[models.Gateway]:
    now = datetime.now(UTC)
    sc = Scope(parks=p.scope_parks(park), start=now, end=now, gw=gw)
    items = {(g.park, g.gw): g for g in ctx.services.fleet.gateways(sc, int(now.timestamp() * 1000))}
    for rec in ctx.registry.gateways():
        if not p.may_see(rec.park) or (park and rec.park != park) or (gw and rec.gw != gw):
            continue
        g = items.setdefault(
            (rec.park, rec.gw), models.Gateway(park=rec.park, gw=rec.gw, last_seen_ms=None, online=False)
        )
        g.registered = True
        g.description = rec.description
    for g in items.values():
        if g.registered is UNSET:
            g.registered = False
    return [items[k] for k in sorted(items)]


@router.get(
    "/gateways",
    tags=["fleet"],
    summary="Gateways: last seen, online, agent, backlog, uplink, loss ledger.",
    responses=models.ok(models.GatewayPage, "One page of gateways."),
)
def gateways(p: Viewer, ctx: Ctx, pg: Page1000, park: ParkQ = None) -> Response:
    return json_response(models.GatewayPage(**pg.page(_fleet(ctx, p, park))))


@router.get(
    "/gateways/{gw}",
    tags=["fleet"],
    responses={**models.ok(models.Gateway, "The gateway."), **NOT_FOUND},
    summary="One gateway (give `park` when the id exists in several).",
)
def gateway(p: Viewer, ctx: Ctx, gw: GwPath, park: ParkQ = None) -> Response:
    items = _fleet(ctx, p, park, gw)
    if not items:
        raise NotFound(f"no gateway {gw!r} visible to this key")
    if len(items) > 1:
        raise BadRequest(f"gateway id {gw!r} exists in parks {[g.park for g in items]}: add ?park=")
    return json_response(items[0])
