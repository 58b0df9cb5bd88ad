"""Alarms: threshold rules over bucketed fields, machines in fault, gateways offline or silent."""

from __future__ import annotations

from analytics.alarms import BUCKET_AGG, offline_episodes, state_episodes, threshold_episodes
from api import models
from api.services.common import groups
from api.services.fleet import FleetService
from settings.api import ApiSettings
from settings.errors import ConfigError
from storage.query import QueryBackend, Scope, numeric_field


class AlarmService:
    """Alarm answers over one backend; gateway liveness comes from the fleet service.

    Raises:
        ConfigError: a rule names no numeric field of its reading kind.
    """

    def __init__(self, settings: ApiSettings, backend: QueryBackend, fleet: FleetService) -> None:
        self.settings = settings
        self.backend = backend
        self.fleet = fleet
        for i, rule in enumerate(settings.alarms.rules):
            try:
                numeric_field(rule.kind, rule.field)
            except ValueError as exc:
                raise ConfigError(
                    f"alarms.rules[{i}] ({rule.id}): {exc}; use a numeric field of a reading kind, "
                    'e.g. kind = "machine", field = "spindle_temp_c"'
                ) from exc

    def alarms(self, scope: Scope, now_ms: int) -> list[models.Alarm]:
        """Every alarm episode in the window: active first, then newest first."""
        out = [
            *self._rules(scope, now_ms),
            *self._machine_faults(scope, now_ms),
            *self._offline(scope, now_ms),
        ]
        out.sort(key=lambda x: (not x.active, -x.raised_ms, x.rule, x.park, x.gw))
        return out

    def _rules(self, scope: Scope, now_ms: int) -> list[models.Alarm]:
        a = self.settings.alarms
        out: list[models.Alarm] = []
        for rule in a.rules:
            if rule.park and scope.parks is not None and rule.park not in scope.parks:
                continue
            rule_scope = scope if not rule.park else _with_parks(scope, (rule.park,))
            fb = self.backend.field_buckets(
                rule.kind, rule_scope, bucket_s=a.bucket_s, field=rule.field, agg=BUCKET_AGG[rule.op]
            )
            for (park, gw, dev), idx in groups(fb.park, fb.gw, fb.dev).items():
                if rule.dev and dev != rule.dev:
                    continue
                for ep in threshold_episodes(
                    fb.bucket_ms[idx],
                    fb.value[idx],
                    op=rule.op,
                    threshold=rule.threshold,
                    duration_ms=rule.duration_s * 1000,
                    width_ms=a.bucket_s * 1000,
                    now_ms=now_ms,
                ):
                    out.append(
                        models.Alarm(
                            rule=rule.id,
                            severity=rule.severity,
                            park=park,
                            gw=gw,
                            dev=dev,
                            condition=f"{rule.kind}.{rule.field} {rule.op} {rule.threshold} for {rule.duration_s} s",
                            raised_ms=ep.raised_ms,
                            cleared_ms=ep.cleared_ms,
                            active=ep.active,
                            worst=ep.worst,
                        )
                    )
        return out

    def _machine_faults(self, scope: Scope, now_ms: int) -> list[models.Alarm]:
        a = self.settings.alarms
        if a.machine_fault_after_s <= 0:
            return []
        out: list[models.Alarm] = []
        b = self.backend.machine_buckets(scope, bucket_s=a.bucket_s)
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            for ep in state_episodes(
                b.bucket_ms[idx],
                b.state[idx],
                state="fault",
                duration_ms=a.machine_fault_after_s * 1000,
                width_ms=a.bucket_s * 1000,
                now_ms=now_ms,
            ):
                out.append(
                    models.Alarm(
                        rule="machine_fault",
                        severity="critical",
                        park=park,
                        gw=gw,
                        dev=dev,
                        condition=f"machine in fault for {a.machine_fault_after_s} s",
                        raised_ms=ep.raised_ms,
                        cleared_ms=ep.cleared_ms,
                        active=ep.active,
                        worst=None,
                    )
                )
        return out

    def _offline(self, scope: Scope, now_ms: int) -> list[models.Alarm]:
        a = self.settings.alarms
        status = self.backend.status(scope, latest=False)
        fleet = {(g.park, g.gw): g for g in self.fleet.gateways(scope, now_ms)}
        after_ms = a.gateway_offline_after_s * 1000
        out: list[models.Alarm] = []
        seen: set[tuple[str, str]] = set()
        for (park, gw, _), idx in groups(status.park, status.gw, status.gw).items():
            seen.add((park, gw))
            g = fleet.get((park, gw))
            for ep in offline_episodes(
                status.ts_ms[idx],
                status.state[idx],
                after_ms=after_ms,
                now_ms=now_ms,
                last_seen_ms=None if g is None else g.last_seen_ms,
                stale_ms=after_ms,
            ):
                out.append(_offline_alarm(park, gw, a.gateway_offline_after_s, ep.raised_ms, ep.cleared_ms))
        for (park, gw), g in fleet.items():
            if (park, gw) in seen:
                continue
            for ep in offline_episodes(
                [], [], after_ms=after_ms, now_ms=now_ms, last_seen_ms=g.last_seen_ms, stale_ms=after_ms
            ):
                out.append(_offline_alarm(park, gw, a.gateway_offline_after_s, ep.raised_ms, ep.cleared_ms))
        return out


def _offline_alarm(park: str, gw: str, after_s: int, raised_ms: int, cleared_ms: int | None) -> models.Alarm:
    return models.Alarm(
        rule="gateway_offline",
        severity="critical",
        park=park,
        gw=gw,
        dev=None,
        condition=f"gateway offline or silent for {after_s} s",
        raised_ms=raised_ms,
        cleared_ms=cleared_ms,
        active=cleared_ms is None,
        worst=None,
    )


def _with_parks(scope: Scope, parks: tuple[str, ...]) -> Scope:
    return Scope(
        parks=parks,
        start=scope.start,
        end=scope.end,
        operator=scope.operator,
        tech=scope.tech,
        bbox=scope.bbox,
        gw=scope.gw,
    )
