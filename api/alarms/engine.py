"""The alarm evaluator: rules from the store, conditions from the data, instances through the lifecycle.

It runs in the API process (:func:`api.alarms.loop.run`), not in the ingester: the ingester only
writes and scales out by sharing one subscription, so no ingester sees all the data, while the
API already holds every read the rules need (bucketed fields, machine states, gateway status,
loss ledger, dead zones) on either backend. API replicas share the alarm store; a lease in it lets
one replica at a time evaluate and notify.

Every evaluation, for each enabled rule: the sources whose condition holds get an open instance
(raised, or re-activated), open instances whose condition is gone are cleared. Then suppression by
design is applied (a gateway offline suppresses the alarms of its devices and of itself; a machine
reporting ``off`` is in planned maintenance and its alarms are suppressed), and expired shelving
ends. Each change of an instance is written to the journal (what the KPIs count) and, when it is
visible to operators, to the outbox (what the notifier sends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

import msgspec

from analytics.alarm_lifecycle import (
    Activate,
    Clear,
    Event,
    Instance,
    State,
    Suppress,
    apply,
    expire_shelving,
    notifiable,
    raise_alarm,
)
from api.services.alarms import Condition, Key, check_rule
from settings.api import AlarmRule, AlarmSettings
from storage.alarm_store import AlarmEvent, AlarmStore, StoredAlarm

MACHINE_FAULT: Final = "machine_fault"
GATEWAY_OFFLINE: Final = "gateway_offline"


class Conditions(Protocol):
    """Where conditions come from (:class:`api.services.alarms.AlarmConditions`, or a fake)."""

    def evaluate(
        self, rule: AlarmRule, now_ms: int, active: set[Key], memory: dict[str, object]
    ) -> dict[Key, Condition]: ...

    def machine_states(self, now_ms: int) -> dict[Key, str]: ...


def seed_rules(settings: AlarmSettings) -> list[AlarmRule]:
    """The rules of the config file, with the two built-in ones it configures by number."""
    rules = list(settings.rules)
    ids = {r.id for r in rules}
    if settings.machine_fault_after_s > 0 and MACHINE_FAULT not in ids:
        rules.append(
            AlarmRule(
                id=MACHINE_FAULT,
                type="state",
                state="fault",
                duration_s=settings.machine_fault_after_s,
                priority="critical",
            )
        )
    if GATEWAY_OFFLINE not in ids:
        rules.append(
            AlarmRule(
                id=GATEWAY_OFFLINE,
                type="gateway_offline",
                duration_s=settings.gateway_offline_after_s,
                priority="high",
            )
        )
    return rules


def rule_body(rule: AlarmRule) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(rule)
    body.pop("enabled", None)
    return body


def decode_rule(body: dict[str, Any], *, enabled: bool) -> AlarmRule:
    """A stored rule body as a checked rule; ``ValueError`` says what is wrong with it."""
    try:
        rule = msgspec.convert({**body, "enabled": enabled}, AlarmRule)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from exc
    check_rule(rule)
    return rule


@dataclass(slots=True)
class Report:
    """What one evaluation changed (counts), and the rules it could not evaluate."""

    raised: int = 0
    cleared: int = 0
    reactivated: int = 0
    suppressed: int = 0
    unsuppressed: int = 0
    unshelved: int = 0
    broken_rules: dict[str, str] = field(default_factory=dict)


def view(a: StoredAlarm, now_ms: int) -> dict[str, Any]:
    """The API's shape of an alarm instance (times as ISO 8601 strings, and in ms)."""
    i = a.instance
    return {
        "id": a.id,
        "rule_id": i.rule_id,
        "park": i.park,
        "source": i.source,
        "priority": i.priority,
        "state": i.state(now_ms),
        "message": i.message,
        "raised_at": _iso(i.raised_at_ms),
        "cleared_at": _iso(i.cleared_at_ms),
        "acknowledged_by": i.acknowledged_by,
        "acknowledged_at": _iso(i.acknowledged_at_ms),
        "ack_comment": i.ack_comment,
        "shelved_until": _iso(i.shelved_until_ms if i.state(now_ms) == "shelved" else None),
        "shelve_reason": i.shelve_reason if i.state(now_ms) == "shelved" else None,
        "suppressed_by": i.suppressed_by,
        "activations": i.activations,
        "active": i.active,
    }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class AlarmEngine:
    """Rules and alarm instances over one store; ``evaluate`` is one pass, ``act`` an operator action."""

    def __init__(self, settings: AlarmSettings, store: AlarmStore, conditions: Conditions) -> None:
        self.settings = settings
        self.store = store
        self.conditions = conditions

    def seed(self, now_ms: int) -> list[str]:
        """Store the config file's rules that the store does not have yet; their ids."""
        return [
            r.id
            for r in seed_rules(self.settings)
            if self.store.seed_rule(r.id, rule_body(r), enabled=r.enabled, now_ms=now_ms)
        ]

    def rules(self) -> tuple[list[AlarmRule], dict[str, str]]:
        """The stored rules that decode, and why the others do not."""
        good: list[AlarmRule] = []
        bad: dict[str, str] = {}
        for r in self.store.rules():
            try:
                good.append(decode_rule(r.body, enabled=r.enabled))
            except ValueError as exc:
                bad[r.id] = str(exc)
        return good, bad

    # -- one evaluation ---------------------------------------------------------------------------

    def evaluate(self, now_ms: int) -> Report:
        """Evaluate every enabled rule at ``now_ms`` and reconcile the open alarm instances.

        The data are read first, outside any transaction; the changes are then written in one
        transaction (one commit per evaluation, and operator actions made meanwhile are kept).
        """
        report = Report()
        rules, report.broken_rules = self.rules()
        enabled = {r.id: r for r in rules if r.enabled}
        snapshot: dict[str, set[Key]] = {}
        for a in self.store.alarms(open_only=True):
            if a.instance.active:
                snapshot.setdefault(a.instance.rule_id, set()).add((a.instance.park, a.instance.source))
        found: dict[str, dict[Key, Condition]] = {}
        memories: dict[str, object] = {}
        for rule in enabled.values():
            memory: dict[str, object] = {}
            known_zones = self.store.memory(rule.id, "known_zones")
            if known_zones is not None:
                memory["known_zones"] = known_zones
            try:
                found[rule.id] = self.conditions.evaluate(rule, now_ms, snapshot.get(rule.id, set()), memory)
            except ValueError as exc:
                report.broken_rules[rule.id] = str(exc)
                continue
            if "known_zones" in memory and known_zones is None:
                memories[rule.id] = memory["known_zones"]
        machines = self.conditions.machine_states(now_ms)
        offline = {k for rid, conds in found.items() if enabled[rid].type == "gateway_offline" for k in conds}
        with self.store.transaction():
            for rule_id, zones in memories.items():
                self.store.remember(rule_id, "known_zones", zones)
            open_by_rule: dict[str, dict[Key, StoredAlarm]] = {}
            for a in self.store.alarms(open_only=True):
                open_by_rule.setdefault(a.instance.rule_id, {})[(a.instance.park, a.instance.source)] = a
            for rule_id, conds in found.items():
                self._reconcile(enabled[rule_id], conds, open_by_rule.get(rule_id, {}), now_ms, report)
            for rule_id, current in open_by_rule.items():
                if rule_id not in enabled:  # disabled or deleted: its alarms clear
                    for a in current.values():
                        if a.instance.active:
                            self._change(a, Clear(at_ms=now_ms), "cleared", "rule disabled", now_ms)
                            report.cleared += 1
            self._suppress_and_expire(now_ms, offline, machines, report)
        return report

    def _reconcile(
        self,
        rule: AlarmRule,
        conds: dict[Key, Condition],
        current: dict[Key, StoredAlarm],
        now_ms: int,
        report: Report,
    ) -> None:
        for key, cond in conds.items():
            known = current.get(key)
            if known is None:
                inst = raise_alarm(
                    rule_id=rule.id, park=cond.park, source=cond.source, priority=rule.effective_priority,
                    message=cond.message, at_ms=cond.since_ms,
                )  # fmt: skip
                aid = self.store.insert_alarm(inst, now_ms)
                self._record(
                    StoredAlarm(id=aid, instance=inst, updated_ms=now_ms), None, inst, "activated", "", now_ms
                )
                report.raised += 1
            elif not known.instance.active:
                self._change(known, Activate(at_ms=now_ms, message=cond.message), "activated", "", now_ms)
                report.reactivated += 1
        for key, a in current.items():
            if key not in conds and a.instance.active:
                self._change(a, Clear(at_ms=now_ms), "cleared", "", now_ms)
                report.cleared += 1

    def _suppress_and_expire(
        self, now_ms: int, offline: set[Key], machines: dict[Key, str], report: Report
    ) -> None:
        for a in self.store.alarms(open_only=True):
            inst = a.instance
            reason: str | None = None
            gw = inst.source.split("/", 1)[0]
            if (
                inst.rule_id != GATEWAY_OFFLINE
                and (inst.park, gw) in offline
                and not inst.source.startswith("zone:")
            ):
                reason = f"gateway {gw} offline"
            elif machines.get((inst.park, inst.source)) == "off":
                reason = "planned maintenance (machine off)"
            if reason != inst.suppressed_by:
                a = self._change(
                    a,
                    Suppress(reason=reason, at_ms=now_ms),
                    "suppressed" if reason else "unsuppressed",
                    reason or "",
                    now_ms,
                )
                if reason:
                    report.suppressed += 1
                else:
                    report.unsuppressed += 1
            back = expire_shelving(a.instance, now_ms)
            if back != a.instance:
                self.store.update_alarm(a.id, back, now_ms)
                self._record(a, a.instance, back, "unshelved", "shelving expired", now_ms)
                report.unshelved += 1

    # -- operator actions ---------------------------------------------------------------------------

    def act(
        self, alarm_id: int, event: Event, kind: str, actor: str, detail: str, now_ms: int
    ) -> StoredAlarm:
        """Apply an operator's event to an alarm atomically; ``KeyError`` when it does not exist,
        :class:`analytics.alarm_lifecycle.InvalidTransition` when the event does not apply."""
        with self.store.transaction():
            a = self.store.alarm(alarm_id)
            if a is None:
                raise KeyError(alarm_id)
            return self._change(a, event, kind, actor, now_ms, detail=detail)

    def _change(
        self, a: StoredAlarm, event: Event, kind: str, actor: str, now_ms: int, *, detail: str = ""
    ) -> StoredAlarm:
        after = apply(a.instance, event)
        self.store.update_alarm(a.id, after, now_ms)
        self._record(a, a.instance, after, kind, actor if detail else "", now_ms, detail=detail or actor)
        return replace(a, instance=after, updated_ms=now_ms)

    def _record(
        self,
        a: StoredAlarm,
        before: Instance | None,
        after: Instance,
        kind: str,
        actor: str,
        now_ms: int,
        *,
        detail: str = "",
    ) -> None:
        state_after: State = after.state(now_ms)
        state_before: State | None = None if before is None else before.state(now_ms)
        self.store.log_event(
            AlarmEvent(
                alarm_id=a.id, rule_id=after.rule_id, park=after.park, source=after.source, priority=after.priority,
                kind=kind, state=state_after, at_ms=now_ms, actor=actor, detail=detail,
            )
        )  # fmt: skip
        if notifiable(state_before, state_after):
            body = view(replace(a, instance=after, updated_ms=now_ms), now_ms)
            self.store.enqueue(
                {**body, "change": kind, "previous_state": state_before, "at_ms": now_ms}, now_ms
            )


def wall_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)
