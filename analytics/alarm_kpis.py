"""ISA-18.2 / EEMUA 191 alarm system performance figures over the alarm journal (pure).

Inputs are activations (an alarm instance raised, or re-activated while still open) and the
instances still active. Figures, over the window ``[start_ms, end_ms)``:

- alarms per day, and per 10 minutes (mean and maximum over the window's 10-minute periods,
  aligned to ``start_ms``); ISA-18.2 aims at ~150 per operator per day, ~1 per 10 minutes;
- flood share: the share of 10-minute periods with more than 10 activations (target < 1 %);
- chattering: alarms (rule, park, source) activated at least 3 times within 60 s;
- stale: alarms active for more than 24 h at ``end_ms``;
- top 10: the ten alarms with most activations and their share of all activations (EEMUA 191
  suggests the top ten make up no more than 1-5 % of the load in a well-run system);
- priority distribution: the share of activations per priority (ISA-18.2 suggests roughly
  80 % low, 15 % high, 5 % critical for three priorities).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

PERIOD_MS: Final = 600_000
FLOOD_ACTIVATIONS: Final = 10
CHATTER_COUNT: Final = 3
CHATTER_WINDOW_MS: Final = 60_000
STALE_MS: Final = 86_400_000
DAY_MS: Final = 86_400_000
PRIORITIES: Final = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class Activation:
    rule_id: str
    park: str
    source: str
    priority: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """An alarm active now, since ``raised_at_ms``."""

    alarm_id: int
    rule_id: str
    park: str
    source: str
    raised_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Kpis:
    activations: int
    days: float
    alarms_per_day: float
    alarms_per_10min_mean: float
    alarms_per_10min_max: int
    flood_share: float
    chattering: list[dict[str, object]]
    stale: list[dict[str, object]]
    top10: list[dict[str, object]]
    top10_share: float
    priority_distribution: dict[str, float]


def chattering(times_ms: Sequence[int]) -> bool:
    """Whether sorted activation times hold :data:`CHATTER_COUNT` within :data:`CHATTER_WINDOW_MS`."""
    return any(
        times_ms[i + CHATTER_COUNT - 1] - times_ms[i] <= CHATTER_WINDOW_MS
        for i in range(len(times_ms) - CHATTER_COUNT + 1)
    )


def kpis(
    activations: Iterable[Activation], standing: Iterable[Standing], *, start_ms: int, end_ms: int
) -> Kpis:
    """The figures of the module docstring. ``end_ms`` must be after ``start_ms``."""
    acts = sorted((a for a in activations if start_ms <= a.at_ms < end_ms), key=lambda a: a.at_ms)
    n = len(acts)
    span = end_ms - start_ms
    periods = max(1, -(-span // PERIOD_MS))
    per_period = Counter((a.at_ms - start_ms) // PERIOD_MS for a in acts)
    flooded = sum(1 for c in per_period.values() if c > FLOOD_ACTIVATIONS)
    by_alarm: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for a in acts:
        by_alarm[(a.rule_id, a.park, a.source)].append(a.at_ms)
    chatter = [
        {"rule_id": r, "park": p, "source": s, "activations": len(t)}
        for (r, p, s), t in sorted(by_alarm.items())
        if chattering(t)
    ]
    ranked = sorted(by_alarm.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    top = [{"rule_id": r, "park": p, "source": s, "activations": len(t)} for (r, p, s), t in ranked]
    top_n = sum(len(t) for _, t in ranked)
    prio = Counter(a.priority for a in acts)
    stale = [
        {
            "id": s.alarm_id,
            "rule_id": s.rule_id,
            "park": s.park,
            "source": s.source,
            "active_h": round((end_ms - s.raised_at_ms) / 3_600_000, 2),
        }
        for s in sorted(standing, key=lambda s: s.raised_at_ms)
        if end_ms - s.raised_at_ms > STALE_MS
    ]
    days = span / DAY_MS
    return Kpis(
        activations=n,
        days=days,
        alarms_per_day=n / days if days > 0 else 0.0,
        alarms_per_10min_mean=n / periods,
        alarms_per_10min_max=max(per_period.values(), default=0),
        flood_share=flooded / periods,
        chattering=chatter,
        stale=stale,
        top10=top,
        top10_share=top_n / n if n else 0.0,
        priority_distribution={p: (prio[p] / n if n else 0.0) for p in PRIORITIES},
    )
