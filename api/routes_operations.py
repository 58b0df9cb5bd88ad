"""Operations routes: broadband, factory KPIs, alarms and the gateway fleet."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Response

from api.auth import Principal
from api.deps import (
    NOT_FOUND,
    Context,
    GwPath,
    Viewer,
    json_response,
    page,
)
from api.errors import BadRequest, NotFound
from api.params import (
    FromQ,
    GwQ,
    OffsetQ,
    ParkQ,
    ToQ,
    limit_query,
)
from storage.query import Scope


def build(ctx: Context) -> APIRouter:
    """The routes of this module over ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    settings, service, registry = ctx.settings, ctx.service, ctx.registry
    scope = ctx.scope
    max_page = settings.api.max_page_size
    limit_1000 = limit_query(1000, max_page_size=max_page)

    # -- broadband, factory, alarms -----------------------------------------------------------

    @v1.get(
        "/broadband/summary", tags=["broadband"], summary="Broadband quality per gateway or park vs targets."
    )
    def broadband_summary(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        gw: GwQ = None,
        by: Literal["gw", "park"] = "gw",
    ) -> Response:
        sc = scope(p, park, start, to, gw=gw)
        return json_response(
            {"window": [sc.start.isoformat(), sc.end.isoformat()], "items": service.broadband(sc, by)}
        )

    @v1.get("/factory/machines", tags=["factory"], summary="Machines with production figures in the window.")
    def factory_machines(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        items = service.machine_list(sc)
        return json_response(page(items, limit, offset))

    @v1.get("/factory/oee", tags=["factory"], summary="Availability, performance, quality and OEE.")
    def factory_oee(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        level: Literal["machine", "line", "factory", "park"] = "line",
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        out = page(service.oee(sc, level), limit, offset)
        return json_response({"level": level, "window": [sc.start.isoformat(), sc.end.isoformat()], **out})

    @v1.get("/factory/energy", tags=["factory"], summary="Energy (kWh) and peak demand (kW).")
    def factory_energy(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        level: Literal["meter", "line", "factory", "park"] = "factory",
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        out = page(service.energy(sc, level), limit, offset)
        return json_response({"level": level, "window": [sc.start.isoformat(), sc.end.isoformat()], **out})

    @v1.get("/alarms", tags=["alarms"], summary="Active alarms and alarm history.")
    def alarms(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        active: bool | None = None,
        limit: int = limit_1000,
        offset: OffsetQ = 0,
    ) -> Response:
        if start is None and to is None:
            now = time.time()
            to_dt = datetime.fromtimestamp(now, UTC)
            sc = scope(p, park, to_dt - timedelta(seconds=settings.alarms.lookback_s), to_dt)
        else:
            sc = scope(p, park, start, to)
        items = service.alarms(sc, int(time.time() * 1000))
        if active is not None:
            items = [a for a in items if a["active"] == active]
        return json_response(page(items, limit, offset))

    # -- fleet and provisioning ---------------------------------------------------------------

    def _fleet(p: Principal, park: str | None, gw: str | None = None) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        sc = Scope(parks=p.scope_parks(park), start=now, end=now, gw=gw)
        items = {(g["park"], g["gw"]): g for g in service.fleet(sc, int(now.timestamp() * 1000))}
        for rec in registry.gateways():
            if not p.may_see(rec.park) or (park and rec.park != park) or (gw and rec.gw != gw):
                continue
            g = items.setdefault(
                (rec.park, rec.gw), {"park": rec.park, "gw": rec.gw, "last_seen_ms": None, "online": False}
            )
            g["registered"] = True
            g["description"] = rec.description
        for g in items.values():
            g.setdefault("registered", False)
        return [items[k] for k in sorted(items)]

    @v1.get(
        "/gateways",
        tags=["fleet"],
        summary="Gateways: last seen, online, agent, backlog, uplink, loss ledger.",
    )
    def gateways(p: Viewer, park: ParkQ = None, limit: int = limit_1000, offset: OffsetQ = 0) -> Response:
        return json_response(page(_fleet(p, park), limit, offset))

    @v1.get(
        "/gateways/{gw}",
        tags=["fleet"],
        responses=NOT_FOUND,
        summary="One gateway (give `park` when the id exists in several).",
    )
    def gateway(p: Viewer, gw: GwPath, park: ParkQ = None) -> Response:
        items = _fleet(p, park, gw)
        if not items:
            raise NotFound(f"no gateway {gw!r} visible to this key")
        if len(items) > 1:
            raise BadRequest(f"gateway id {gw!r} exists in parks {[g['park'] for g in items]}: add ?park=")
        return json_response(items[0])

    return v1
