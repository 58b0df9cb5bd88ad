"""Alarm conditions: which sources each rule holds for now, read from the time-series store.

One method per rule type turns backend tables into :class:`Condition` s keyed by
``(park, source)``; a source is ``gw/dev`` for device rules, ``gw`` for gateway rules and
``zone:<operator>:<tech>:<cell>`` for dead zones. The evaluator (:mod:`api.alarms.engine`) turns
conditions into alarm instances. Everything here is blocking (the evaluator runs it in a thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analytics.alarm_conditions import (
    backlog_growing,
    hysteresis_episodes,
    level_active,
    loss_pct,
    new_zones,
    rates_per_min,
)
from analytics.alarms import BUCKET_AGG, Op, offline_episodes, state_episodes
from api.services.common import groups
from api.services.coverage import CoverageService
from api.services.fleet import FleetService
from settings.api import AlarmRule, ApiSettings
from settings.errors import ConfigError
from storage.query import QueryBackend, Scope, numeric_field

DEAD_ZONE_RSRP_DBM = -115.0
"""The coverage-hole threshold of LTE and NR (docs/coverage.md): the default of ``uplink_rsrp_below``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """A rule's condition holding for one source: since when, and what to tell the operator."""

    park: str
    source: str
    since_ms: int
    message: str


Key = tuple[str, str]


def check_rule(rule: AlarmRule) -> None:
    """Raise ``ValueError`` (with what to fix) when a rule lacks what its type needs."""
    if rule.type in ("threshold", "rate_of_change"):
        if not rule.kind or not rule.field:
            raise ValueError(
                f'a {rule.type} rule needs kind and field, e.g. kind = "machine", field = "spindle_temp_c"'
            )
        try:
            numeric_field(rule.kind, rule.field)
        except ValueError as exc:
            raise ValueError(
                f'{exc}; use a numeric field of a reading kind, e.g. kind = "machine", field = "spindle_temp_c"'
            ) from exc
    if rule.type == "loss_above" and not 0 <= rule.threshold <= 100:
        raise ValueError("a loss_above rule's threshold is a percentage: 0-100")
    if rule.type == "uplink_rsrp_below" and rule.threshold and not -156 <= rule.threshold <= -31:
        raise ValueError("an uplink_rsrp_below threshold is an RSRP in dBm: -156 to -31 (0: -115)")


class AlarmConditions:
    """Evaluate rules over one backend; gateway liveness from the fleet, zones from coverage.

    Raises:
        ConfigError: a rule of the config file lacks what its type needs.
    """

    def __init__(
        self, settings: ApiSettings, backend: QueryBackend, fleet: FleetService, coverage: CoverageService
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.fleet = fleet
        self.coverage = coverage
        for i, rule in enumerate(settings.alarms.rules):
            try:
                check_rule(rule)
            except ValueError as exc:
                raise ConfigError(f"alarms.rules[{i}] ({rule.id}): {exc}") from exc

    def scope(self, rule: AlarmRule, now_ms: int) -> Scope:
        """The window a rule reads: a few of its durations, at least an hour, at most ``lookback_s``."""
        span_s = min(self.settings.alarms.lookback_s, max(3600, 4 * rule.duration_s))
        end = datetime.fromtimestamp(now_ms / 1000, UTC)
        return Scope(
            parks=(rule.park,) if rule.park else None,
            start=end - timedelta(seconds=span_s),
            end=end + timedelta(seconds=1),
            gw=rule.gw or None,
        )

    def evaluate(
        self, rule: AlarmRule, now_ms: int, active: set[Key], memory: dict[str, object]
    ) -> dict[Key, Condition]:
        """The sources for which ``rule`` holds at ``now_ms``.

        ``active``: the sources whose alarm of this rule is active now (hysteresis of level
        rules); ``memory``: the rule's remembered values (known dead zones), updated in place.
        """
        sc = self.scope(rule, now_ms)
        if rule.type in ("threshold", "uplink_rsrp_below", "rate_of_change"):
            return self._buckets(rule, sc, now_ms)
        if rule.type == "state":
            return self._state(rule, sc, now_ms)
        if rule.type == "gateway_offline":
            return self._offline(rule, sc, now_ms)
        if rule.type == "backlog_growing":
            return self._backlog(rule, sc, now_ms)
        if rule.type == "loss_above":
            return self._loss(rule, sc, now_ms, active)
        return self._zones(rule, sc, memory)

    # -- device series ----------------------------------------------------------------------------

    def _buckets(self, rule: AlarmRule, sc: Scope, now_ms: int) -> dict[Key, Condition]:
        bucket_s = rule.bucket_s or self.settings.alarms.bucket_s
        width = bucket_s * 1000
        op: Op = rule.op
        kind, field, threshold = rule.kind, rule.field, rule.threshold
        if rule.type == "uplink_rsrp_below":
            kind, field, op, threshold = "cellular", "rsrp_dbm", "<=", rule.threshold or DEAD_ZONE_RSRP_DBM
        agg = "mean" if rule.type == "rate_of_change" else BUCKET_AGG[op]
        fb = self.backend.field_buckets(kind, sc, bucket_s=bucket_s, field=field, agg=agg)
        out: dict[Key, Condition] = {}
        for (park, gw, dev), idx in groups(fb.park, fb.gw, fb.dev).items():
            if rule.dev and dev != rule.dev:
                continue
            b, v = fb.bucket_ms[idx], fb.value[idx]
            unit = ""
            if rule.type == "rate_of_change":
                b, v = rates_per_min(b, v, width_ms=width)
                unit = "/min"
            eps = hysteresis_episodes(
                b, v, op=op, threshold=threshold, deadband=rule.deadband,
                duration_ms=rule.duration_s * 1000, width_ms=width, now_ms=now_ms,
            )  # fmt: skip
            if eps and eps[-1].active:
                ep = eps[-1]
                what = f"{kind}.{field}{' change' if unit else ''}"
                msg = rule.message or (
                    f"{what} {op} {threshold:g}{unit} for {rule.duration_s} s (worst {ep.worst:.1f})"
                )
                # A modem's uplink belongs to its gateway (a survey vehicle is one).
                source = gw if rule.type == "uplink_rsrp_below" else f"{gw}/{dev}"
                out[(park, source)] = Condition(park=park, source=source, since_ms=ep.raised_ms, message=msg)
        return out

    def _state(self, rule: AlarmRule, sc: Scope, now_ms: int) -> dict[Key, Condition]:
        bucket_s = rule.bucket_s or self.settings.alarms.bucket_s
        b = self.backend.machine_buckets(sc, bucket_s=bucket_s)
        out: dict[Key, Condition] = {}
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            if rule.dev and dev != rule.dev:
                continue
            eps = state_episodes(
                b.bucket_ms[idx], b.state[idx], state=rule.state,
                duration_ms=rule.duration_s * 1000, width_ms=bucket_s * 1000, now_ms=now_ms,
            )  # fmt: skip
            if eps and eps[-1].active:
                msg = rule.message or f"machine {dev} in {rule.state} for {rule.duration_s} s"
                out[(park, f"{gw}/{dev}")] = Condition(
                    park=park, source=f"{gw}/{dev}", since_ms=eps[-1].raised_ms, message=msg
                )
        return out

    def machine_states(self, now_ms: int) -> dict[Key, str]:
        """The latest state of every machine seen in the last ten minutes, by (park, gw/dev)."""
        end = datetime.fromtimestamp(now_ms / 1000, UTC)
        sc = Scope(parks=None, start=end - timedelta(minutes=10), end=end + timedelta(seconds=1))
        b = self.backend.machine_buckets(sc, bucket_s=self.settings.alarms.bucket_s)
        out: dict[Key, str] = {}
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            states = [s for s in b.state[idx].tolist() if s is not None]
            if states:
                out[(park, f"{gw}/{dev}")] = str(states[-1])
        return out

    # -- gateways -----------------------------------------------------------------------------------

    def _offline(self, rule: AlarmRule, sc: Scope, now_ms: int) -> dict[Key, Condition]:
        after_ms = rule.duration_s * 1000
        status = self.backend.status(sc, latest=False)
        fleet = {(g.park, g.gw): g for g in self.fleet.gateways(sc, now_ms)}
        by_gw = groups(status.park, status.gw, status.gw)
        out: dict[Key, Condition] = {}
        for park, gw in sorted({*fleet, *((p, g) for p, g, _ in by_gw)}):
            idx = by_gw.get((park, gw, gw))
            g = fleet.get((park, gw))
            eps = offline_episodes(
                [] if idx is None else status.ts_ms[idx],
                [] if idx is None else status.state[idx],
                after_ms=after_ms,
                now_ms=now_ms,
                last_seen_ms=None if g is None else g.last_seen_ms,
                stale_ms=after_ms,
            )
            if eps and eps[-1].active:
                msg = rule.message or f"gateway {gw} offline or silent for {rule.duration_s} s"
                out[(park, gw)] = Condition(park=park, source=gw, since_ms=eps[-1].raised_ms, message=msg)
        return out

    def _backlog(self, rule: AlarmRule, sc: Scope, now_ms: int) -> dict[Key, Condition]:
        status = self.backend.status(sc, latest=False)
        out: dict[Key, Condition] = {}
        for (park, gw, _), idx in groups(status.park, status.gw, status.gw).items():
            growing, growth = backlog_growing(
                status.ts_ms[idx].tolist(), status.backlog[idx].tolist(),
                window_ms=rule.duration_s * 1000, min_growth=max(rule.threshold, 1.0), now_ms=now_ms,
            )  # fmt: skip
            if growing:
                msg = rule.message or f"backlog of {gw} grew by {growth:g} batches in {rule.duration_s} s"
                out[(park, gw)] = Condition(park=park, source=gw, since_ms=now_ms, message=msg)
        return out

    def _loss(self, rule: AlarmRule, sc: Scope, now_ms: int, active: set[Key]) -> dict[Key, Condition]:
        out: dict[Key, Condition] = {}
        for r in self.backend.ledger(sc).rows():
            park, gw = str(r["park"]), str(r["gw"])
            pct = loss_pct(float(r["received"] or 0), float(r["missing"] or 0))
            op: Op = ">"
            if level_active(
                pct, op=op, threshold=rule.threshold, deadband=rule.deadband, was_active=(park, gw) in active
            ):
                msg = rule.message or f"{gw} lost {pct:.1f} % of its batches (> {rule.threshold:g} %)"
                out[(park, gw)] = Condition(park=park, source=gw, since_ms=now_ms, message=msg)
        return out

    # -- coverage -------------------------------------------------------------------------------

    def _zones(self, rule: AlarmRule, sc: Scope, memory: dict[str, object]) -> dict[Key, Condition]:
        cov = self.settings.coverage
        zones = self.coverage.dead_zones(sc, cov.default_resolution, cov.dead_zone_max_class)
        current = {z.id: z for z in zones}
        known_raw = memory.get("known_zones")
        if not isinstance(known_raw, list):
            memory["known_zones"] = [sorted(z.cells) for z in zones]
            return {}
        known = [frozenset(int(c) for c in cells) for cells in known_raw]
        fresh = set(new_zones((frozenset(z.cells) for z in zones), known))
        out: dict[Key, Condition] = {}
        for zid, z in current.items():
            if frozenset(z.cells) in fresh:
                source = "zone:" + zid.split(":", 1)[1]
                msg = rule.message or (
                    f"new dead zone in {z.park} ({z.operator} {z.tech}): {len(z.cells)} cells, {z.area_m2:.0f} m²"
                )
                out[(z.park, source)] = Condition(
                    park=z.park, source=source, since_ms=z.first_seen_ms, message=msg
                )
        return out
