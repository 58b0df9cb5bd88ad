"""Pure conditions of alarm rules: threshold with hysteresis, rate of change, backlog growth, levels.

Each function answers from plain arrays whether (and since when) a rule's condition holds, so the
evaluator (:mod:`api.alarms.engine`) only fetches data and reconciles alarm instances.

Threshold with hysteresis (deadband) over time buckets of width ``width_ms`` (see
:mod:`analytics.alarms` for how buckets aggregate): the condition *raises* after the value has
passed ``threshold`` for ``duration_ms`` without a gap, and *clears* only when the value is back
beyond the deadband (for ``>``: at or below ``threshold - deadband``), or when data stop. A value
wobbling around the threshold inside the deadband therefore raises one alarm, not a storm; with a
deadband of 0 it clears as soon as the value is back on the good side.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from analytics.alarms import Episode, Op


def _passes(value: float, op: Op, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


def _cleared(value: float, op: Op, threshold: float, deadband: float) -> bool:
    """Back on the good side of the threshold by at least the deadband."""
    if op in (">", ">="):
        return value <= threshold - deadband if deadband > 0 else not _passes(value, op, threshold)
    return value >= threshold + deadband if deadband > 0 else not _passes(value, op, threshold)


def _worse(worst: float | None, value: float, *, high: bool) -> float:
    if worst is None:
        return value
    return max(worst, value) if high else min(worst, value)


def hysteresis_episodes(
    bucket_ms: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    op: Op,
    threshold: float,
    deadband: float,
    duration_ms: int,
    width_ms: int,
    now_ms: int,
) -> list[Episode]:
    """Episodes of one series of buckets (sorted by start) for a threshold rule with a deadband.

    An episode is raised ``duration_ms`` after its run of passing buckets starts and cleared at
    the start of the bucket that is back beyond the deadband (or at the end of the last bucket
    before a gap). It is still active when it reaches the newest bucket and that bucket is current
    (ends no earlier than ``now_ms - width_ms``). NaN values count as missing.
    """
    b = np.asarray(bucket_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    episodes: list[Episode] = []
    pending: int | None = None
    raised: int | None = None
    worst: float | None = None
    prev_end: int | None = None
    high = op in (">", ">=")
    for bi, vi in zip(b.tolist(), v.tolist(), strict=True):
        if np.isnan(vi):
            continue
        if prev_end is not None and bi != prev_end:  # a gap ends everything
            if raised is not None:
                episodes.append(Episode(raised_ms=raised, cleared_ms=prev_end, worst=worst))
            pending = raised = worst = None
        prev_end = bi + width_ms
        if raised is not None:
            if _cleared(vi, op, threshold, deadband):
                episodes.append(Episode(raised_ms=raised, cleared_ms=bi, worst=worst))
                pending = raised = worst = None
            else:
                worst = _worse(worst, vi, high=high)
            continue
        if _passes(vi, op, threshold):
            if pending is None:
                pending, worst = bi, vi
            else:
                worst = _worse(worst, vi, high=high)
            if bi + width_ms - pending >= duration_ms:
                raised = pending + duration_ms
        else:
            pending = worst = None
    if raised is not None and prev_end is not None:
        current = prev_end >= now_ms - width_ms
        episodes.append(Episode(raised_ms=raised, cleared_ms=None if current else prev_end, worst=worst))
    return episodes


def rates_per_min(
    bucket_ms: npt.ArrayLike, values: npt.ArrayLike, *, width_ms: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The change per minute between adjacent buckets: (bucket of the later one, |Δvalue| per min).

    Only buckets whose predecessor is the bucket right before them get a rate (a gap gives none).
    """
    b = np.asarray(bucket_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if b.size < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    adjacent = np.diff(b) == width_ms
    rate = np.abs(np.diff(v)) / (width_ms / 60_000.0)
    return b[1:][adjacent], rate[adjacent]


def backlog_growing(
    ts_ms: Sequence[int], backlog: Sequence[float], *, window_ms: int, min_growth: float, now_ms: int
) -> tuple[bool, float]:
    """Whether a gateway's backlog grew through the last ``window_ms``: never fell, and rose by at
    least ``min_growth``; reports must cover the window (the first at or before its start).

    Returns ``(growing, growth)``.
    """
    pts = [(t, x) for t, x in zip(ts_ms, backlog, strict=True) if x == x and t <= now_ms]
    if not pts:
        return False, 0.0
    start = now_ms - window_ms
    before = [p for p in pts if p[0] <= start]
    inside = [p for p in pts if p[0] > start]
    if not before or not inside:
        return False, 0.0
    series = [before[-1][1], *(x for _, x in inside)]
    growth = series[-1] - series[0]
    never_fell = all(b >= a for a, b in itertools.pairwise(series))
    return never_fell and growth >= min_growth, growth


def level_active(value: float, *, op: Op, threshold: float, deadband: float, was_active: bool) -> bool:
    """A level condition with hysteresis: raise past the threshold, clear only beyond the deadband."""
    if value != value:
        return was_active
    if was_active:
        return not _cleared(value, op, threshold, deadband)
    return _passes(value, op, threshold)


def loss_pct(received: float, missing: float) -> float:
    """Share of a gateway's batches never stored, in percent (NaN when nothing was counted)."""
    total = received + missing
    return float("nan") if total <= 0 else 100.0 * missing / total


def new_zones(current: Iterable[frozenset[int]], known: Iterable[frozenset[int]]) -> list[frozenset[int]]:
    """Zones (sets of H3 cells) of ``current`` that share no cell with any zone of ``known``."""
    seen: set[int] = set()
    for z in known:
        seen |= z
    return [z for z in current if not (z & seen)]
