"""What the routes serve: backend queries turned into coverage, dead zones, KPIs, alarms and fleet.

Blocking (the routes run it in worker threads). Identical aggregate queries within
``cache_ttl_s`` are answered from a small in-memory cache; nothing else is kept between requests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from analytics.alarms import BUCKET_AGG, offline_episodes, state_episodes, threshold_episodes
from analytics.coverage import (
    CoverageSummary,
    cell_classes,
    park_cells,
    summarize,
    summary_change,
    survey_gaps,
)
from analytics.deadzones import CellAssessment, DeadZone, DetectOptions, ZoneKind, assess_cells, find_zones
from analytics.factory import (
    EnergyUse,
    Production,
    group_peak_kw,
    machine_production,
    meter_energy,
    rollup,
)
from analytics.signal import BROADBAND_CLASSES, BroadbandTargets, classify_broadband
from settings.api import ApiSettings, MachineSettings, MeterSettings
from settings.errors import ConfigError
from storage.query import CellStats, NetworkRows, QueryBackend, Scope, numeric_field

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Window placeholder of queries over every stored reading (``timed=False``)."""


class TtlCache:
    """A small LRU cache whose entries expire after ``ttl_s`` (0 disables it).

    An expired entry may still be served for ``stale_s`` by :meth:`lookup` while it is refreshed.
    """

    def __init__(self, ttl_s: float, max_entries: int = 256, stale_s: float = 0.0) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        """The live value of ``key``, or None."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > time.monotonic():
                self.hits += 1
                return hit[1]
        return None

    def lookup(self, key: Any) -> tuple[Any, bool]:
        """``(value, fresh)``: a live value, a stale one (expired less than ``stale_s`` ago), or None."""
        if self.ttl_s <= 0:
            return None, False
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
        if hit is None or hit[0] + self.stale_s <= now:
            return None, False
        self.hits += 1
        return hit[1], hit[0] > now

    def put(self, key: Any, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def get_or_compute(self, key: Any, compute: Callable[[], T]) -> T:
        if self.ttl_s <= 0:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                self._data.move_to_end(key)
                self.hits += 1
                value: T = hit[1]
                return value
        self.misses += 1
        value = compute()
        with self._lock:
            self._data[key] = (now + self.ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return value


@dataclass(frozen=True, slots=True)
class Coverage:
    """Cell statistics with their classes and the minimum sample count used."""

    stats: CellStats
    classes: np.ndarray[Any, np.dtype[np.int8]]
    min_samples: int


class Service:
    """The API's read logic over one query backend."""

    def __init__(self, settings: ApiSettings, backend: QueryBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = TtlCache(settings.api.cache_ttl_s)
        self._stable: OrderedDict[Any, Any] = OrderedDict()
        self._stable_lock = threading.Lock()
        self._stable_max = 256
        self.parks = {p.id: p for p in settings.parks}
        for i, rule in enumerate(settings.alarms.rules):
            try:
                numeric_field(rule.kind, rule.field)
            except ValueError as exc:
                raise ConfigError(
                    f"alarms.rules[{i}] ({rule.id}): {exc}; use a numeric field of a reading kind, "
                    'e.g. kind = "machine", field = "spindle_temp_c"'
                ) from exc

    # -- coverage -----------------------------------------------------------------------------

    def _versioned(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` cached for ``cache_ttl_s``, and beyond while the backend's data is unchanged.

        A backend whose ``data_version()`` fingerprints its readings (DuckDB) lets an answer
        computed from the same fingerprint be reused without recomputing; a backend that answers
        None (InfluxDB) uses the TTL cache alone.
        """
        if self.cache.ttl_s <= 0:
            return compute()
        version = self.backend.data_version()
        if version is None:
            return self.cache.get_or_compute(key, compute)
        with self._stable_lock:
            hit = self._stable.get((key, version))
            if hit is not None:
                self._stable.move_to_end((key, version))
                self.cache.hits += 1
                found: T = hit
                return found
        recent = self.cache.get(key)
        if recent is not None:  # within the TTL, but maybe older than this version: not kept for it
            fresh_enough: T = recent
            return fresh_enough
        # The fingerprint was read first, so the value is at least as new as the version it is kept under.
        self.cache.misses += 1
        value = compute()
        self.cache.put(key, value)
        with self._stable_lock:
            self._stable[(key, version)] = value
            while len(self._stable) > self._stable_max:
                self._stable.popitem(last=False)
        return value

    def coverage(self, scope: Scope, resolution: int) -> Coverage:
        stats = self._versioned(("cells", scope, resolution), lambda: self._cell_stats(scope, resolution))
        return Coverage(
            stats=stats, classes=cell_classes(stats), min_samples=self.settings.coverage.min_samples
        )

    def _cell_stats(self, scope: Scope, resolution: int) -> CellStats:
        """Cell statistics of ``scope``; an operator/technology filter is cut from a cached unfiltered answer.

        Rows are grouped by operator and technology, so the rows of the unfiltered answer that
        match the filter are exactly the filtered answer: no second query while it is cached.
        """
        if scope.operator is not None or scope.tech is not None:
            unfiltered = self.cache.get(("cells", replace(scope, operator=None, tech=None), resolution))
            if unfiltered is not None:
                keep = np.ones(len(unfiltered), dtype=bool)
                if scope.operator is not None:
                    # The backends match the operator without regard to case.
                    wanted = scope.operator.lower()
                    keep &= np.array([str(o).lower() == wanted for o in unfiltered.operator], dtype=bool)
                if scope.tech is not None:
                    keep &= unfiltered.tech == scope.tech
                cut: CellStats = unfiltered.take(keep)
                return cut
        return self.backend.cell_stats(scope, resolution=resolution)

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        """Operators and technologies with readings per park (``timed=False``: ever stored)."""
        key_scope = scope if timed else replace(scope, start=_EPOCH, end=_EPOCH)
        return self.cache.get_or_compute(
            ("networks", key_scope, timed), lambda: self.backend.networks(scope, timed=timed)
        )

    def latest_ms(self, scope: Scope) -> int | None:
        """Time of the newest cellular reading of the scope's parks, operator and technology, ever."""
        rows = self.networks(scope, timed=False)
        return int(rows.last_ms.max()) if len(rows) else None

    def park_known(self, park: str) -> bool:
        """Whether ``park`` is configured or has ever had a cellular reading."""
        if park in self.parks:
            return True
        return len(self.networks(Scope(parks=(park,), start=_EPOCH, end=_EPOCH), timed=False)) > 0

    def assessment(self, scope: Scope, resolution: int, max_class: str) -> CellAssessment:
        """The dead-zone test of every cell of ``scope`` (:func:`analytics.deadzones.assess_cells`)."""
        cov = self.settings.coverage
        options = DetectOptions(
            max_class=max_class, confidence=cov.dead_zone_confidence, gnss_error_m=cov.gnss_error_m
        )

        def compute() -> CellAssessment:
            return assess_cells(self.backend.cell_samples(scope, resolution=resolution), options=options)

        return self._versioned(("assess", scope, resolution, options), compute)

    def dead_zones(
        self, scope: Scope, resolution: int, max_class: str, kind: ZoneKind = "dead"
    ) -> list[DeadZone]:
        """Dead zones (or interference zones), largest first."""

        def compute() -> list[DeadZone]:
            # Inside: the data fingerprint is read before the cells it is computed from.
            return find_zones(self.assessment(scope, resolution, max_class), kind=kind)

        return self._versioned(("zones", scope, resolution, max_class, kind), compute)

    def gaps(self, scope: Scope, resolution: int) -> list[tuple[str, int]]:
        """(park, cell) of every configured park cell without samples, for the scope's parks."""
        cov = self.coverage(scope, resolution)
        out: list[tuple[str, int]] = []
        for park_id, park in sorted(self.parks.items()):
            if not park.boundary or (scope.parks is not None and park_id not in scope.parks):
                continue
            measured = {int(c) for c, p in zip(cov.stats.h3, cov.stats.park, strict=True) if p == park_id}
            out += [(park_id, c) for c in survey_gaps(park_cells(park.boundary, resolution), measured)]
        return out

    def summary(self, scope: Scope, resolution: int, max_class: str) -> list[dict[str, Any]]:
        length = scope.end - scope.start
        prev_scope = Scope(
            parks=scope.parks,
            start=scope.start - length,
            end=scope.start,
            operator=scope.operator,
            tech=scope.tech,
            bbox=scope.bbox,
        )
        current = self._summaries(scope, resolution, max_class)
        previous = self._summaries(prev_scope, resolution, max_class)
        return [
            {**s.as_dict(), "change": summary_change(s, previous.get(key))}
            for key, s in sorted(current.items())
        ]

    def _summaries(
        self, scope: Scope, resolution: int, max_class: str
    ) -> dict[tuple[str, str, str], CoverageSummary]:
        cov = self.coverage(scope, resolution)
        zones = self.dead_zones(scope, resolution, max_class)
        zone_areas: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for z in zones:
            zone_areas[(z.park, z.operator, z.tech)].append(z.area_m2)
        s = cov.stats
        keys = sorted({(str(p), str(o), str(t)) for p, o, t in zip(s.park, s.operator, s.tech, strict=True)})
        out: dict[tuple[str, str, str], CoverageSummary] = {}
        for key in keys:
            m = (s.park == key[0]) & (s.operator == key[1]) & (s.tech == key[2])
            park = self.parks.get(key[0])
            out[key] = summarize(
                park=key[0],
                operator=key[1],
                tech=key[2],
                cells=s.h3[m],
                classes=cov.classes[m],
                sufficient=s.samples[m] >= cov.min_samples,
                dead_zone_areas_m2=zone_areas.get(key, []),
                park_cell_set=park_cells(park.boundary, resolution) if park and park.boundary else None,
            )
        return out

    # -- broadband ----------------------------------------------------------------------------

    def broadband(self, scope: Scope, by: str) -> list[dict[str, Any]]:
        stats = self.cache.get_or_compute(
            ("bb", scope, by),
            lambda: self.backend.broadband_stats(scope, by="park" if by == "park" else "gw"),
        )
        t = self.settings.broadband
        targets = BroadbandTargets(
            down_mbps=t.down_mbps, up_mbps=t.up_mbps, latency_p95_ms=t.latency_p95_ms, loss_pct=t.loss_pct
        )
        cls = classify_broadband(
            down_mbps=stats.down_median_mbps,
            up_mbps=stats.up_median_mbps,
            latency_p95_ms=stats.latency_p95_ms,
            loss_pct=stats.loss_mean_pct,
            targets=targets,
        )
        out = []
        for i, row in enumerate(stats.rows()):
            probes = int(row.pop("ipv6_probes"))
            ok = int(row.pop("ipv6_ok"))
            if by == "park":
                row.pop("gw")
            row = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            row["ipv6_share"] = round(ok / probes, 4) if probes else None
            row["class"] = "unknown" if cls[i] < 0 else BROADBAND_CLASSES[cls[i]]
            row["targets"] = {
                "down_mbps": t.down_mbps,
                "up_mbps": t.up_mbps,
                "latency_p95_ms": t.latency_p95_ms,
                "loss_pct": t.loss_pct,
            }
            out.append(row)
        return out

    # -- factory ------------------------------------------------------------------------------

    def machines(self, scope: Scope) -> list[tuple[tuple[str, str, str, str, str], Production]]:
        """((park, factory, line, gw, dev), production) per machine seen in the window."""
        f = self.settings.factory
        b = self.cache.get_or_compute(
            ("machine", scope), lambda: self.backend.machine_buckets(scope, bucket_s=f.state_bucket_s)
        )
        meta = _placements(f.machines)
        start_ms = int(scope.start.timestamp() * 1000)
        end_ms = int(scope.end.timestamp() * 1000)
        out = []
        for (park, gw, dev), idx in _groups(b.park, b.gw, b.dev).items():
            m = meta.get((park, gw, dev)) or meta.get((park, "", dev))
            prod = machine_production(
                ts_ms=b.bucket_ms[idx],
                states=b.state[idx],
                parts_total=np.column_stack([b.parts_total_min[idx], b.parts_total_max[idx]]).ravel(),
                rejects_total=np.column_stack([b.rejects_total_min[idx], b.rejects_total_max[idx]]).ravel(),
                ideal_cycle_s=None if m is None else m.ideal_cycle_s,
                start_ms=start_ms,
                end_ms=end_ms,
                max_hold_ms=max(f.max_hold_s, f.state_bucket_s) * 1000,
            )
            factory, line = _factory_line(m, gw)
            out.append(((park, factory, line, gw, dev), prod))
        return out

    def machine_list(self, scope: Scope) -> list[dict[str, Any]]:
        """Per machine: its production figures plus its last known state and when it was seen."""
        f = self.settings.factory
        b = self.cache.get_or_compute(
            ("machine", scope), lambda: self.backend.machine_buckets(scope, bucket_s=f.state_bucket_s)
        )
        last: dict[tuple[str, str, str], tuple[str | None, int]] = {}
        for (park, gw, dev), idx in _groups(b.park, b.gw, b.dev).items():
            states = [x for x in b.state[idx].tolist() if x is not None]
            last[(park, gw, dev)] = (states[-1] if states else None, int(b.bucket_ms[idx][-1]))
        names = ("park", "factory", "line", "gw", "dev")
        out = []
        for key, prod in sorted(self.machines(scope)):
            state, seen = last[(key[0], key[3], key[4])]
            out.append(
                {
                    **dict(zip(names, key, strict=True)),
                    "state": state,
                    "last_bucket_ms": seen,
                    **prod.as_dict(),
                }
            )
        return out

    def oee(self, scope: Scope, level: str) -> list[dict[str, Any]]:
        width = {"machine": 5, "line": 3, "factory": 2, "park": 1}[level]
        names = ("park", "factory", "line", "gw", "dev")[:width]
        groups = rollup((key[:width], prod) for key, prod in self.machines(scope))
        return [{**dict(zip(names, k, strict=True)), **p.as_dict()} for k, p in sorted(groups.items())]

    def energy(self, scope: Scope, level: str) -> list[dict[str, Any]]:
        f = self.settings.factory
        b = self.cache.get_or_compute(
            ("energy", scope), lambda: self.backend.energy_buckets(scope, bucket_s=f.demand_interval_s)
        )
        meta = _placements(f.meters)
        width = {"meter": 5, "line": 3, "factory": 2, "park": 1}[level]
        names = ("park", "factory", "line", "gw", "dev")[:width]
        uses: dict[tuple[str, ...], EnergyUse] = {}
        members: dict[tuple[str, ...], list[np.ndarray[Any, Any]]] = defaultdict(list)
        for (park, gw, dev), idx in _groups(b.park, b.gw, b.dev).items():
            m = meta.get((park, gw, dev)) or meta.get((park, "", dev))
            factory, line = _factory_line(m, gw)
            key = (park, factory, line, gw, dev)[:width]
            use = meter_energy(
                bucket_ms=b.bucket_ms[idx],
                mean_power_kw=b.power_mean_kw[idx],
                energy_min_kwh=b.energy_min_kwh[idx],
                energy_max_kwh=b.energy_max_kwh[idx],
                bucket_s=f.demand_interval_s,
            )
            uses[key] = uses[key] + use if key in uses else use
            members[key].append(idx)
        out = []
        for key in sorted(uses):
            idx = np.concatenate(members[key])
            peak = group_peak_kw(b.bucket_ms[idx], b.power_mean_kw[idx])
            out.append(
                {
                    **dict(zip(names, key, strict=True)),
                    "energy_kwh": round(uses[key].energy_kwh, 3),
                    "peak_kw": None if peak is None else round(peak, 3),
                    "demand_interval_s": f.demand_interval_s,
                }
            )
        return out

    # -- fleet and alarms ---------------------------------------------------------------------

    def fleet(self, scope: Scope, now_ms: int) -> list[dict[str, Any]]:
        latest = self.backend.status(scope, latest=True)
        ledger = {(str(r["park"]), str(r["gw"])): r for r in self.backend.ledger(scope).rows()}
        offline_ms = self.settings.alarms.gateway_offline_after_s * 1000
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for r in latest.rows():
            key = (str(r["park"]), str(r["gw"]))
            led = ledger.get(key)
            last_seen = max(int(r["ts_ms"]), int(led["ts_ms"]) if led else 0)
            online = r["state"] == "online" and now_ms - last_seen < offline_ms
            out[key] = {
                "park": key[0],
                "gw": key[1],
                "last_seen_ms": last_seen,
                "online": online,
                "reported_state": r["state"],
                "agent_version": r["agent_version"],
                "config_hash": r["config_hash"],
                "config_error": r["config_error"],
                "backlog": _int(r["backlog"]),
                "dropped": _int(r["dropped"]),
                "unconfirmed": _int(r["unconfirmed"]),
                "expired": _int(r["expired"]),
                "buffer_pct": _float(r["buffer_pct"]),
                "uplink": {
                    "operator": r["uplink_operator"],
                    "tech": r["uplink_tech"],
                    "rsrp_dbm": _float(r["uplink_rsrp_dbm"]),
                    "sinr_db": _float(r["uplink_sinr_db"]),
                },
                "loss": _ledger(led),
            }
        for key, led in ledger.items():
            if key not in out:
                out[key] = {
                    "park": key[0],
                    "gw": key[1],
                    "last_seen_ms": int(led["ts_ms"]),
                    "online": now_ms - int(led["ts_ms"]) < offline_ms,
                    "reported_state": None,
                    "loss": _ledger(led),
                }
        return [out[k] for k in sorted(out)]

    def alarms(self, scope: Scope, now_ms: int) -> list[dict[str, Any]]:
        a = self.settings.alarms
        out: list[dict[str, Any]] = []
        for rule in a.rules:
            if rule.park and scope.parks is not None and rule.park not in scope.parks:
                continue
            rule_scope = scope if not rule.park else _with_parks(scope, (rule.park,))
            fb = self.backend.field_buckets(
                rule.kind, rule_scope, bucket_s=a.bucket_s, field=rule.field, agg=BUCKET_AGG[rule.op]
            )
            for (park, gw, dev), idx in _groups(fb.park, fb.gw, fb.dev).items():
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
                        {
                            "rule": rule.id,
                            "severity": rule.severity,
                            "park": park,
                            "gw": gw,
                            "dev": dev,
                            "condition": f"{rule.kind}.{rule.field} {rule.op} {rule.threshold} for {rule.duration_s} s",
                            "raised_ms": ep.raised_ms,
                            "cleared_ms": ep.cleared_ms,
                            "active": ep.active,
                            "worst": ep.worst,
                        }
                    )
        if a.machine_fault_after_s > 0:
            b = self.backend.machine_buckets(scope, bucket_s=a.bucket_s)
            for (park, gw, dev), idx in _groups(b.park, b.gw, b.dev).items():
                for ep in state_episodes(
                    b.bucket_ms[idx],
                    b.state[idx],
                    state="fault",
                    duration_ms=a.machine_fault_after_s * 1000,
                    width_ms=a.bucket_s * 1000,
                    now_ms=now_ms,
                ):
                    out.append(
                        {
                            "rule": "machine_fault",
                            "severity": "critical",
                            "park": park,
                            "gw": gw,
                            "dev": dev,
                            "condition": f"machine in fault for {a.machine_fault_after_s} s",
                            "raised_ms": ep.raised_ms,
                            "cleared_ms": ep.cleared_ms,
                            "active": ep.active,
                            "worst": None,
                        }
                    )
        status = self.backend.status(scope, latest=False)
        fleet = {(g["park"], g["gw"]): g for g in self.fleet(scope, now_ms)}
        after_ms = a.gateway_offline_after_s * 1000
        seen: set[tuple[str, str]] = set()
        for (park, gw, _), idx in _groups(status.park, status.gw, status.gw).items():
            seen.add((park, gw))
            last_seen = fleet.get((park, gw), {}).get("last_seen_ms")
            for ep in offline_episodes(
                status.ts_ms[idx],
                status.state[idx],
                after_ms=after_ms,
                now_ms=now_ms,
                last_seen_ms=last_seen,
                stale_ms=after_ms,
            ):
                out.append(_offline_alarm(park, gw, a.gateway_offline_after_s, ep.raised_ms, ep.cleared_ms))
        for (park, gw), g in fleet.items():
            if (park, gw) in seen:
                continue
            for ep in offline_episodes(
                [], [], after_ms=after_ms, now_ms=now_ms, last_seen_ms=g["last_seen_ms"], stale_ms=after_ms
            ):
                out.append(_offline_alarm(park, gw, a.gateway_offline_after_s, ep.raised_ms, ep.cleared_ms))
        out.sort(key=lambda x: (not x["active"], -x["raised_ms"], x["rule"], x["park"], x["gw"]))
        return out


_P = TypeVar("_P", MachineSettings, MeterSettings)


def _placements(table: list[_P]) -> dict[tuple[str, str, str], _P]:
    """``(park, gw, dev)`` → placement; ``gw`` is ``""`` for an entry that names no gateway.

    A device id is unique on its gateway, not in its park (two gateways may each read a
    ``meter-1``), so an entry with ``gw`` belongs to that gateway's device only; the caller tries
    the exact key first and the gateway-less one second.
    """
    return {(m.park, m.gw, m.dev): m for m in table}


def _factory_line(m: MachineSettings | MeterSettings | None, gw: str) -> tuple[str, str]:
    """Where a device is booked; without a ``[[factory.*]]`` entry, its gateway is its factory.

    One gateway usually serves one hall or factory, so it is the natural grouping of devices
    that nobody placed; the line stays empty rather than a made-up name.
    """
    if m is None:
        return gw, ""
    return m.factory or gw, m.line


def _offline_alarm(
    park: str, gw: str, after_s: int, raised_ms: int, cleared_ms: int | None
) -> dict[str, Any]:
    return {
        "rule": "gateway_offline",
        "severity": "critical",
        "park": park,
        "gw": gw,
        "dev": None,
        "condition": f"gateway offline or silent for {after_s} s",
        "raised_ms": raised_ms,
        "cleared_ms": cleared_ms,
        "active": cleared_ms is None,
        "worst": None,
    }


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


def _groups(*cols: np.ndarray[Any, Any]) -> dict[tuple[str, str, str], np.ndarray[Any, Any]]:
    idx: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(*(c.tolist() for c in cols), strict=True)):
        idx[(str(key[0]), str(key[1]), str(key[2]))].append(i)
    return {k: np.array(v, dtype=np.int64) for k, v in idx.items()}


def _int(x: Any) -> int | None:
    return None if x is None or x != x else int(x)


def _float(x: Any) -> float | None:
    return None if x is None or x != x else float(x)


def _ledger(led: dict[str, Any] | None) -> dict[str, Any] | None:
    if led is None:
        return None
    return {
        k: _int(led[k]) for k in ("received", "missing", "duplicated", "late", "last_seq", "restarts")
    } | {"ts_ms": int(led["ts_ms"])}
