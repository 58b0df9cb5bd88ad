"""Alarm rules: a threshold held for a duration, and gateways offline for too long.

Threshold rules run over time buckets of width ``width_ms``: for ``>``/``>=`` the bucket's
*minimum* must pass (every sample in it), for ``<``/``<=`` its *maximum*, so a bucket that passes
holds the condition for its whole width. Consecutive passing buckets form a run; a missing bucket
(no data) ends the run. An alarm is raised ``duration`` after the run starts (a run exactly
``duration`` long raises it) and clears when the run ends. It is *active* when its run reaches the
newest bucket and that bucket is still current (it ends no earlier than ``now - width``).

State rules (a machine reporting ``fault``) run the same way over buckets holding the last
state reported in each: a bucket passes when that state is the one watched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Op = Literal[">", ">=", "<", "<="]
BUCKET_AGG: Final[dict[str, Literal["min", "max"]]] = {">": "min", ">=": "min", "<": "max", "<=": "max"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """One alarm occurrence: raised, cleared (None while active) and the worst value seen."""

    raised_ms: int
    cleared_ms: int | None
    worst: float | None

    @property
    def active(self) -> bool:
        return self.cleared_ms is None


def _passes(values: npt.NDArray[np.float64], op: Op, threshold: float) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        if op == ">":
            return values > threshold
        if op == ">=":
            return values >= threshold
        if op == "<":
            return values < threshold
        return values <= threshold


def threshold_episodes(
    bucket_ms: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    op: Op,
    threshold: float,
    duration_ms: int,
    width_ms: int,
    now_ms: int,
) -> list[Episode]:
    """Episodes of one series of buckets (sorted by start) for one threshold rule."""
    b = np.asarray(bucket_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    ok = _passes(v, op, threshold)
    episodes: list[Episode] = []
    i, n = 0, b.size
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and ok[j + 1] and b[j + 1] == b[j] + width_ms:
            j += 1
        run_start, run_end = int(b[i]), int(b[j]) + width_ms
        if run_end - run_start >= duration_ms:
            run = v[i : j + 1]
            worst = float(run.max() if op in (">", ">=") else run.min())
            current = j == n - 1 and run_end >= now_ms - width_ms
            episodes.append(
                Episode(
                    raised_ms=run_start + duration_ms, cleared_ms=None if current else run_end, worst=worst
                )
            )
        i = j + 1
    return episodes


def state_episodes(
    bucket_ms: npt.ArrayLike,
    states: npt.ArrayLike,
    *,
    state: str,
    duration_ms: int,
    width_ms: int,
    now_ms: int,
) -> list[Episode]:
    """Episodes of a device reporting ``state`` (last state of each bucket) for ``duration_ms``."""
    s = np.asarray(states, dtype=object)
    hit = np.fromiter((x == state for x in s.tolist()), dtype=np.float64, count=s.size)
    episodes = threshold_episodes(
        bucket_ms, hit, op=">", threshold=0.5, duration_ms=duration_ms, width_ms=width_ms, now_ms=now_ms
    )
    return [replace(ep, worst=None) for ep in episodes]


def offline_episodes(
    ts_ms: npt.ArrayLike,
    states: npt.ArrayLike,
    *,
    after_ms: int,
    now_ms: int,
    last_seen_ms: int | None = None,
    stale_ms: int | None = None,
) -> list[Episode]:
    """Episodes of a gateway being offline longer than ``after_ms``.

    ``ts_ms``/``states`` are its status messages in time order (``online``/``offline``, the
    latter usually the broker's Last Will). A gateway that still claims ``online`` but has not
    been heard of for ``stale_ms`` (``last_seen_ms``) counts as offline since it was last seen.
    """
    t = np.asarray(ts_ms, dtype=np.int64)
    s = np.asarray(states, dtype=object)
    down_since: int | None = None
    episodes: list[Episode] = []
    for ti, si in zip(t.tolist(), s.tolist(), strict=True):
        if si == "offline" and down_since is None:
            down_since = ti
        elif si == "online" and down_since is not None:
            if ti - down_since >= after_ms:
                episodes.append(Episode(raised_ms=down_since + after_ms, cleared_ms=ti, worst=None))
            down_since = None
    stale = stale_ms is not None and last_seen_ms is not None and now_ms - last_seen_ms >= stale_ms
    if down_since is None and stale:
        down_since = last_seen_ms
    if down_since is not None and now_ms - down_since >= after_ms:
        episodes.append(Episode(raised_ms=down_since + after_ms, cleared_ms=None, worst=None))
    return episodes
