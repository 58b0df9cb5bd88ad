"""Factory KPIs: availability, performance, quality and OEE; energy in kWh and peak kW.

Definitions (per machine and window):

- a state sample holds until the next one, at most ``max_hold_ms`` (data gaps count as unknown),
  and never past the window end;
- *planned time* = time in any state except ``off``; *run time* = time in ``running``;
- **availability** = run / planned;
- **performance** = ideal cycle time × parts / run time. Above 1 the machine made parts faster
  than its "ideal" allows: the configured ideal cycle time is too long. The figure is reported as
  measured and flagged (``ideal_cycle_suspect``), and OEE is withheld, since it would be wrong;
- **quality** = (parts − rejects) / parts;  **OEE** = availability × performance × quality.

Parts and rejects are counter increases: the sum of positive steps of the cumulative counter; after
a reset (a step down) the new value counts as produced since the reset. Rolling up to line,
factory and park sums run, planned and ideal time and parts, then recomputes the ratios (the
standard time-weighted aggregation, not a mean of ratios).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MACHINE_STATES = ("off", "idle", "running", "fault", "setup")


def state_durations_ms(
    ts_ms: npt.ArrayLike, states: npt.ArrayLike, *, end_ms: int, max_hold_ms: int, start_ms: int | None = None
) -> dict[str, int]:
    """Milliseconds spent in each state; ``ts_ms`` sorted ascending, ``states`` names or None."""
    t = np.asarray(ts_ms, dtype=np.int64)
    s = np.asarray(states, dtype=object)
    out = dict.fromkeys(MACHINE_STATES, 0)
    if t.size == 0:
        return out
    nxt = np.append(t[1:], end_ms)
    stop = np.minimum(np.minimum(nxt, t + max_hold_ms), end_ms)
    begin = t if start_ms is None else np.maximum(t, start_ms)
    dur = np.clip(stop - begin, 0, None)
    for state in MACHINE_STATES:
        out[state] = int(dur[s == state].sum())
    return out


def counter_increase(values: npt.ArrayLike) -> float:
    """Increase of a cumulative counter over a series, counting resets as restarts from zero."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size < 2:
        return 0.0
    d = np.diff(v)
    return float(np.where(d >= 0, d, v[1:]).sum())


@dataclass(frozen=True, slots=True, kw_only=True)
class Production:
    """Additive production figures of one machine or group in one window."""

    planned_ms: int = 0
    run_ms: int = 0
    fault_ms: int = 0
    parts: float = 0.0
    rejects: float = 0.0
    ideal_ms: float = 0.0
    has_ideal: bool = True

    def __add__(self, other: Production) -> Production:
        return Production(
            planned_ms=self.planned_ms + other.planned_ms,
            run_ms=self.run_ms + other.run_ms,
            fault_ms=self.fault_ms + other.fault_ms,
            parts=self.parts + other.parts,
            rejects=self.rejects + other.rejects,
            ideal_ms=self.ideal_ms + other.ideal_ms,
            has_ideal=self.has_ideal and other.has_ideal,
        )

    @property
    def availability(self) -> float | None:
        return self.run_ms / self.planned_ms if self.planned_ms > 0 else None

    @property
    def performance(self) -> float | None:
        if not self.has_ideal or self.run_ms <= 0:
            return None
        return self.ideal_ms / self.run_ms

    @property
    def quality(self) -> float | None:
        return (self.parts - self.rejects) / self.parts if self.parts > 0 else None

    @property
    def ideal_cycle_suspect(self) -> bool:
        """Performance above 100 %: the configured ideal cycle time is longer than the real one."""
        p = self.performance
        return p is not None and p > 1.0

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        if a is None or p is None or q is None or self.ideal_cycle_suspect:
            return None
        return a * p * q

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "planned_s": round(self.planned_ms / 1000, 1),
            "run_s": round(self.run_ms / 1000, 1),
            "fault_s": round(self.fault_ms / 1000, 1),
            "parts": self.parts,
            "rejects": self.rejects,
            "availability": r(self.availability),
            "performance": r(self.performance),
            "quality": r(self.quality),
            "oee": r(self.oee),
            "ideal_cycle_suspect": self.ideal_cycle_suspect,
        }


def machine_production(
    *,
    ts_ms: npt.ArrayLike,
    states: npt.ArrayLike,
    parts_total: npt.ArrayLike,
    rejects_total: npt.ArrayLike,
    ideal_cycle_s: float | None,
    start_ms: int,
    end_ms: int,
    max_hold_ms: int,
) -> Production:
    """Production figures of one machine from its (time-sorted) samples or buckets."""
    t = np.asarray(ts_ms, dtype=np.int64)
    s = np.asarray(states, dtype=object)
    known = np.array([x is not None for x in s], dtype=bool) if s.size else np.zeros(0, dtype=bool)
    d = state_durations_ms(t[known], s[known], end_ms=end_ms, max_hold_ms=max_hold_ms, start_ms=start_ms)
    parts = counter_increase(parts_total)
    rejects = min(counter_increase(rejects_total), parts)
    return Production(
        planned_ms=sum(v for k, v in d.items() if k != "off"),
        run_ms=d["running"],
        fault_ms=d["fault"],
        parts=parts,
        rejects=rejects,
        ideal_ms=(ideal_cycle_s or 0.0) * 1000.0 * parts,
        has_ideal=ideal_cycle_s is not None,
    )


def rollup(items: Iterable[tuple[tuple[str, ...], Production]]) -> dict[tuple[str, ...], Production]:
    """Sum productions by key (e.g. ``(park, factory, line)``)."""
    out: dict[tuple[str, ...], Production] = {}
    for key, prod in items:
        out[key] = out[key] + prod if key in out else prod
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyUse:
    """Energy of one meter or group in one window."""

    energy_kwh: float
    peak_kw: float | None

    def __add__(self, other: EnergyUse) -> EnergyUse:
        peaks = [p for p in (self.peak_kw, other.peak_kw) if p is not None]
        # Summing peaks of different meters over-states a group's peak when they do not coincide;
        # the group peak is computed from summed bucket power instead (see group_peak_kw).
        return EnergyUse(energy_kwh=self.energy_kwh + other.energy_kwh, peak_kw=max(peaks) if peaks else None)


def meter_energy(
    *,
    bucket_ms: npt.ArrayLike,
    mean_power_kw: npt.ArrayLike,
    energy_min_kwh: npt.ArrayLike,
    energy_max_kwh: npt.ArrayLike,
    bucket_s: int,
) -> EnergyUse:
    """kWh from the meter's energy counter (or mean power × time without one) and peak demand.

    Peak kW is the highest bucket-mean power (with 900 s buckets: the utilities' 15-minute demand).
    """
    p = np.asarray(mean_power_kw, dtype=np.float64)
    lo = np.asarray(energy_min_kwh, dtype=np.float64)
    hi = np.asarray(energy_max_kwh, dtype=np.float64)
    if (~np.isnan(hi)).any():
        series = np.column_stack([lo, hi]).ravel()
        kwh = counter_increase(series)
    else:
        kwh = float(np.nansum(p) * bucket_s / 3600.0) if p.size else 0.0
    peak = float(np.nanmax(p)) if p.size and not np.isnan(p).all() else None
    return EnergyUse(energy_kwh=kwh, peak_kw=peak)


def group_peak_kw(bucket_ms: npt.ArrayLike, mean_power_kw: npt.ArrayLike) -> float | None:
    """Peak of the summed bucket-mean power of several meters (their coincident peak)."""
    b = np.asarray(bucket_ms, dtype=np.int64)
    p = np.asarray(mean_power_kw, dtype=np.float64)
    ok = ~np.isnan(p)
    if not ok.any():
        return None
    keys, inv = np.unique(b[ok], return_inverse=True)
    sums = np.bincount(inv, weights=p[ok], minlength=keys.size)
    return float(sums.max())
