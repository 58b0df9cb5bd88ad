"""Alarm routes: instances and operator actions under ``/api/v1/alarms``, rules under
``/api/v1/alarm-rules``, the notification delivery log under ``/api/v1/alarm-deliveries``.

Who may do what: any key reads the alarms of its parks; acknowledging, shelving, unshelving and
taking an alarm out of service need the ``engineer`` role; editing rules needs ``engineer`` for a
rule limited to the key's park and an all-parks key for a rule of every park. An alarm or rule of
a park the key may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field

from analytics.alarm_kpis import Activation, Standing, kpis
from analytics.alarm_lifecycle import (
    Acknowledge,
    InvalidTransition,
    SetOutOfService,
    Shelve,
    Unshelve,
)
from api import models
from api.alarms.engine import AlarmEngine, decode_rule, rule_body, view
from api.auth import Principal
from api.deps import (
    BODY_UNREADABLE,
    CONFLICT,
    NOT_FOUND,
    Context,
    Engineer,
    Page100,
    Page1000,
    Viewer,
    json_response,
)
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.params import FromQ, ParkQ, ToQ, window
from contract.ids import ID
from storage.alarm_store import StoredAlarm

PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
AlarmId = Annotated[int, Path(ge=1, le=2**62, description="Alarm instance id.")]
RuleId = Annotated[str, Path(pattern=ID.regex, max_length=ID.max_length, description=f"Rule id: {ID.rule}.")]
StateQ = Annotated[
    Literal[
        "active_unacknowledged",
        "active_acknowledged",
        "cleared_unacknowledged",
        "cleared",
        "shelved",
        "suppressed",
        "out_of_service",
        "open",
    ]
    | None,
    Query(description="Only alarms in this state; `open`: every alarm not yet closed."),
]
PriorityQ = Annotated[
    Literal["low", "medium", "high", "critical"] | None, Query(description="Only this priority.")
]
RuleQ = Annotated[
    str | None, Query(pattern=ID.regex, max_length=ID.max_length, description="Only this rule.")
]


class AckIn(BaseModel):
    comment: str | None = Field(default=None, max_length=500)


class ShelveIn(BaseModel):
    minutes: int = Field(ge=1, le=7 * 24 * 60, description="How long, at most a week.")
    reason: str = Field(min_length=1, max_length=500)


class OutOfServiceIn(BaseModel):
    out_of_service: bool = True
    comment: str | None = Field(default=None, max_length=500)


def _now_ms() -> int:
    return int(time.time() * 1000)


def build(ctx: Context, engine: AlarmEngine) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    store = engine.store

    def visible(p: Principal, alarm_id: int) -> StoredAlarm:
        a = store.alarm(alarm_id)
        if a is None or not p.may_see(a.instance.park):
            raise NotFound(f"no alarm {alarm_id} visible to this key: GET /api/v1/alarms lists them")
        return a

    def act(p: Principal, alarm_id: int, event: Any, kind: str, detail: str = "") -> Response:
        visible(p, alarm_id)
        try:
            a = engine.act(alarm_id, event, kind, p.name, detail, _now_ms())
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from exc
        return json_response(models.AlarmInstance(**view(a, _now_ms())))

    # -- instances --------------------------------------------------------------------------------

    @router.get(
        "/alarms",
        tags=["alarms"],
        summary="Alarm instances: open ones and those closed in the look-back, open first.",
        responses=models.ok(models.AlarmPage, "One page of alarm instances."),
    )
    def alarms(
        p: Viewer,
        pg: Page1000,
        park: ParkQ = None,
        state: StateQ = None,
        priority: PriorityQ = None,
        rule_id: RuleQ = None,
    ) -> Response:
        parks = p.scope_parks(park)
        now = _now_ms()
        since = now - ctx.settings.alarms.lookback_s * 1000
        items = []
        for a in store.alarms(since_ms=since):
            i = a.instance
            if parks is not None and i.park not in parks:
                continue
            st = i.state(now)
            if state is not None and (st != state if state != "open" else i.closed):
                continue
            if (priority and i.priority != priority) or (rule_id and i.rule_id != rule_id):
                continue
            items.append(a)
        items.sort(
            key=lambda a: (
                a.instance.closed,
                PRIORITY_RANK[a.instance.priority],
                -a.instance.raised_at_ms,
                a.id,
            )
        )
        return json_response(
            models.AlarmPage(**pg.page([models.AlarmInstance(**view(a, now)) for a in items]))
        )

    @router.get(
        "/alarms/kpis",
        tags=["alarms"],
        summary="ISA-18.2 alarm performance: rate, flood, chattering, stale, top 10, priorities.",
        responses=models.ok(models.AlarmKpis, "The figures over the window (default: the last day)."),
    )
    def alarm_kpis(p: Viewer, park: ParkQ = None, start: FromQ = None, to: ToQ = None) -> Response:
        parks = p.scope_parks(park)
        w = window(start, to, default_days=1, max_days=ctx.settings.coverage.max_window_days)
        s_ms, e_ms = int(w.start.timestamp() * 1000), int(w.end.timestamp() * 1000)
        acts = [
            Activation(rule_id=e.rule_id, park=e.park, source=e.source, priority=e.priority, at_ms=e.at_ms)
            for e in store.events(start_ms=s_ms, end_ms=e_ms, kind="activated")
            if parks is None or e.park in parks
        ]
        standing = [
            Standing(alarm_id=a.id, rule_id=a.instance.rule_id, park=a.instance.park, source=a.instance.source,
                     raised_at_ms=a.instance.raised_at_ms)
            for a in store.alarms(open_only=True)
            if a.instance.active and (parks is None or a.instance.park in parks)
        ]  # fmt: skip
        k = kpis(acts, standing, start_ms=s_ms, end_ms=e_ms)
        return json_response(
            models.AlarmKpis(
                window=[w.start.isoformat(), w.end.isoformat()],
                parks=None if parks is None else list(parks),
                flood_threshold=10,
                **asdict(k),
            )
        )

    @router.get(
        "/alarms/{alarm_id}",
        tags=["alarms"],
        summary="One alarm instance.",
        responses={**models.ok(models.AlarmInstance, "The alarm."), **NOT_FOUND},
    )
    def alarm(p: Viewer, alarm_id: AlarmId) -> Response:
        return json_response(models.AlarmInstance(**view(visible(p, alarm_id), _now_ms())))

    @router.post(
        "/alarms/{alarm_id}/acknowledge",
        tags=["alarms"],
        summary="Acknowledge an alarm (engineer role); 409 when it was acknowledged already.",
        responses={
            **models.ok(models.AlarmInstance, "The alarm after it."),
            **NOT_FOUND,
            **CONFLICT,
            **BODY_UNREADABLE,
        },
    )
    def acknowledge(p: Engineer, alarm_id: AlarmId, body: AckIn | None = None) -> Response:
        comment = body.comment if body else None
        return act(
            p,
            alarm_id,
            Acknowledge(by=p.name, at_ms=_now_ms(), comment=comment),
            "acknowledged",
            comment or "",
        )

    @router.post(
        "/alarms/{alarm_id}/shelve",
        tags=["alarms"],
        summary="Shelve an alarm for some minutes with a reason (engineer role).",
        responses={
            **models.ok(models.AlarmInstance, "The alarm after it."),
            **NOT_FOUND,
            **CONFLICT,
            **BODY_UNREADABLE,
        },
    )
    def shelve(p: Engineer, alarm_id: AlarmId, body: ShelveIn) -> Response:
        now = _now_ms()
        event = Shelve(by=p.name, at_ms=now, until_ms=now + body.minutes * 60_000, reason=body.reason)
        return act(p, alarm_id, event, "shelved", body.reason)

    @router.post(
        "/alarms/{alarm_id}/unshelve",
        tags=["alarms"],
        summary="End a shelving early (engineer role).",
        responses={**models.ok(models.AlarmInstance, "The alarm after it."), **NOT_FOUND, **CONFLICT},
    )
    def unshelve(p: Engineer, alarm_id: AlarmId) -> Response:
        return act(p, alarm_id, Unshelve(by=p.name, at_ms=_now_ms()), "unshelved")

    @router.post(
        "/alarms/{alarm_id}/out-of-service",
        tags=["alarms"],
        summary="Take an alarm out of service, or back (engineer role).",
        responses={
            **models.ok(models.AlarmInstance, "The alarm after it."),
            **NOT_FOUND,
            **CONFLICT,
            **BODY_UNREADABLE,
        },
    )
    def out_of_service(p: Engineer, alarm_id: AlarmId, body: OutOfServiceIn) -> Response:
        event = SetOutOfService(by=p.name, at_ms=_now_ms(), out_of_service=body.out_of_service)
        kind = "out_of_service" if body.out_of_service else "in_service"
        return act(p, alarm_id, event, kind, body.comment or "")

    # -- rules ------------------------------------------------------------------------------------

    def rule_view(rule_id: str) -> models.AlarmRuleView:
        r = store.rule(rule_id)
        if r is None:
            raise NotFound(f"no alarm rule {rule_id!r}: GET /api/v1/alarm-rules lists them")
        return models.AlarmRuleView(
            id=r.id, type=str(r.body.get("type", "threshold")), enabled=r.enabled, origin=r.origin,
            updated_ms=r.updated_ms, rule=r.body,
        )  # fmt: skip

    def may_edit(p: Principal, park: str) -> None:
        p.require("engineer")
        if not park:
            p.require_all_parks("edit an alarm rule of every park (give the rule a park)")
        elif not p.may_see(park):
            raise Forbidden(f"the key {p.name!r} may not edit rules of park {park!r}")

    def checked(body: dict[str, Any], rule_id: str | None = None) -> tuple[dict[str, Any], bool]:
        data = dict(body)
        if rule_id is not None and data.setdefault("id", rule_id) != rule_id:
            raise BadRequest(f"the body's id {data['id']!r} differs from the path's {rule_id!r}")
        enabled = data.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise BadRequest("enabled must be true or false")
        try:
            rule = decode_rule(data, enabled=enabled)
        except ValueError as exc:
            raise BadRequest(f"invalid alarm rule: {exc}") from exc
        return rule_body(rule), enabled

    @router.get(
        "/alarm-rules",
        tags=["alarms"],
        summary="Every alarm rule (of the key's parks, and of every park).",
        responses=models.ok(models.AlarmRuleList, "The rules."),
    )
    def rules(p: Viewer) -> Response:
        _, broken = engine.rules()
        items = [
            rule_view(r.id) for r in store.rules() if not r.body.get("park") or p.may_see(str(r.body["park"]))
        ]
        return json_response(models.AlarmRuleList(items=items, broken=broken))

    @router.post(
        "/alarm-rules",
        tags=["alarms"],
        status_code=201,
        summary="Create an alarm rule (fields: see docs/alarms.md).",
        responses={
            201: {
                "description": "Created: the stored rule.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlarmRuleView"}}},
            },
            **CONFLICT,
            **BODY_UNREADABLE,
        },
    )
    def create_rule(p: Viewer, body: Annotated[dict[str, Any], Body()]) -> Response:
        data, enabled = checked(body)
        may_edit(p, str(data.get("park", "")))
        if store.rule(str(data["id"])) is not None:
            raise Conflict(
                f"alarm rule {data['id']!r} exists already: PUT /api/v1/alarm-rules/{data['id']} edits it"
            )
        store.put_rule(str(data["id"]), data, enabled=enabled, origin="api", now_ms=_now_ms())
        out = json_response(rule_view(str(data["id"])))
        out.status_code = 201
        return out

    @router.get(
        "/alarm-rules/{rule_id}",
        tags=["alarms"],
        summary="One alarm rule.",
        responses={**models.ok(models.AlarmRuleView, "The rule."), **NOT_FOUND},
    )
    def get_rule(p: Viewer, rule_id: RuleId) -> Response:
        v = rule_view(rule_id)
        if v.rule.get("park") and not p.may_see(str(v.rule["park"])):
            raise NotFound(f"no alarm rule {rule_id!r}: GET /api/v1/alarm-rules lists them")
        return json_response(v)

    @router.put(
        "/alarm-rules/{rule_id}",
        tags=["alarms"],
        summary="Replace an alarm rule (created when missing).",
        responses={**models.ok(models.AlarmRuleView, "The rule."), **BODY_UNREADABLE},
    )
    def put_rule(p: Viewer, rule_id: RuleId, body: Annotated[dict[str, Any], Body()]) -> Response:
        data, enabled = checked(body, rule_id)
        old = store.rule(rule_id)
        if old is not None:
            may_edit(p, str(old.body.get("park", "")))
        may_edit(p, str(data.get("park", "")))
        store.put_rule(rule_id, data, enabled=enabled, origin="api", now_ms=_now_ms())
        return json_response(rule_view(rule_id))

    def switch(p: Principal, rule_id: str, enabled: bool) -> Response:
        old = store.rule(rule_id)
        if old is None or (old.body.get("park") and not p.may_see(str(old.body["park"]))):
            raise NotFound(f"no alarm rule {rule_id!r}: GET /api/v1/alarm-rules lists them")
        may_edit(p, str(old.body.get("park", "")))
        store.put_rule(rule_id, old.body, enabled=enabled, origin=old.origin, now_ms=_now_ms())
        return json_response(rule_view(rule_id))

    @router.post("/alarm-rules/{rule_id}/enable", tags=["alarms"], summary="Enable a rule.",
                 responses={**models.ok(models.AlarmRuleView, "The rule."), **NOT_FOUND})  # fmt: skip
    def enable_rule(p: Viewer, rule_id: RuleId) -> Response:
        return switch(p, rule_id, True)

    @router.post("/alarm-rules/{rule_id}/disable", tags=["alarms"], summary="Disable a rule (its alarms clear).",
                 responses={**models.ok(models.AlarmRuleView, "The rule."), **NOT_FOUND})  # fmt: skip
    def disable_rule(p: Viewer, rule_id: RuleId) -> Response:
        return switch(p, rule_id, False)

    @router.delete("/alarm-rules/{rule_id}", tags=["alarms"], status_code=204, summary="Delete a rule.",
                   responses={204: {"description": "Deleted."}, **NOT_FOUND})  # fmt: skip
    def delete_rule(p: Viewer, rule_id: RuleId) -> Response:
        old = store.rule(rule_id)
        if old is None or (old.body.get("park") and not p.may_see(str(old.body["park"]))):
            raise NotFound(f"no alarm rule {rule_id!r}: GET /api/v1/alarm-rules lists them")
        may_edit(p, str(old.body.get("park", "")))
        store.delete_rule(rule_id)
        return Response(status_code=204)

    @router.get(
        "/alarm-deliveries",
        tags=["alarms"],
        summary="The notification delivery log (all-parks admin), newest first, paged.",
        responses=models.ok(models.AlarmDeliveryPage, "One page of delivery attempts."),
    )
    def deliveries(p: Viewer, pg: Page100) -> Response:
        p.require("admin")
        p.require_all_parks("read the delivery log")
        rows = [{**asdict(d), "at": _iso_ms(d.at_ms)} for d in store.deliveries(pg.limit, pg.offset)]
        total = store.delivery_count()
        nxt = pg.offset + pg.limit if pg.offset + pg.limit < total else None
        return json_response(
            {"total": total, "limit": pg.limit, "offset": pg.offset, "next_offset": nxt, "items": rows}
        )

    return router


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


__all__ = ["build"]
