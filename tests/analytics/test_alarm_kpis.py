"""ISA-18.2 alarm KPIs on a hand-computed day of alarms.

The day: 12 activations of 12 different alarms in the first 10 minutes (a flood), an alarm
activated 3 times within 50 s (chattering), one 3 times within 100 s (not chattering), one critical
alarm, two activations just outside the window; one alarm standing for 25 h, one for 23 h.
Worked out by hand: 19 activations in 144 ten-minute periods, one of them flooded (12 > 10);
the top ten are the two triple alarms and eight single ones = 14 of 19.
"""

from __future__ import annotations

import pytest

from analytics.alarm_kpis import Activation, Standing, chattering, kpis

DAY = 86_400_000
H = 3_600_000


def act(rule: str, source: str, priority: str, at_ms: int) -> Activation:
    return Activation(rule_id=rule, park="p1", source=source, priority=priority, at_ms=at_ms)


ACTS = [
    *(act("flood", f"s{i}", "low", i * 10_000) for i in range(12)),
    *(act("chat", "c1", "medium", H + d) for d in (0, 20_000, 50_000)),
    *(act("slow", "c2", "high", H + d) for d in (0, 40_000, 100_000)),
    act("crit", "x", "critical", 2 * H),
    act("crit", "x", "critical", -1),
    act("crit", "x", "critical", DAY),
]
STANDING = [
    Standing(alarm_id=7, rule_id="old", park="p1", source="gw-9", raised_at_ms=DAY - 25 * H),
    Standing(alarm_id=8, rule_id="young", park="p1", source="gw-8", raised_at_ms=DAY - 23 * H),
]


def test_hand_computed_day() -> None:
    k = kpis(ACTS, STANDING, start_ms=0, end_ms=DAY)
    assert k.activations == 19
    assert k.days == 1.0
    assert k.alarms_per_day == 19.0
    assert k.alarms_per_10min_mean == pytest.approx(19 / 144)
    assert k.alarms_per_10min_max == 12
    assert k.flood_share == pytest.approx(1 / 144)
    assert k.chattering == [{"rule_id": "chat", "park": "p1", "source": "c1", "activations": 3}]
    assert k.stale == [{"id": 7, "rule_id": "old", "park": "p1", "source": "gw-9", "active_h": 25.0}]
    assert [(t["rule_id"], t["source"], t["activations"]) for t in k.top10] == [
        ("chat", "c1", 3),
        ("slow", "c2", 3),
        ("crit", "x", 1),
        ("flood", "s0", 1),
        ("flood", "s1", 1),
        ("flood", "s10", 1),
        ("flood", "s11", 1),
        ("flood", "s2", 1),
        ("flood", "s3", 1),
        ("flood", "s4", 1),
    ]
    assert k.top10_share == pytest.approx(14 / 19)
    assert k.priority_distribution == pytest.approx(
        {"low": 12 / 19, "medium": 3 / 19, "high": 3 / 19, "critical": 1 / 19}
    )


def test_exactly_ten_in_ten_minutes_is_not_a_flood() -> None:
    k = kpis([act("a", f"s{i}", "low", i * 1000) for i in range(10)], [], start_ms=0, end_ms=600_000)
    assert (k.flood_share, k.alarms_per_10min_max) == (0.0, 10)


@pytest.mark.parametrize(
    ("times", "chatters"),
    [
        ([0, 30_000, 60_000], True),
        ([0, 30_000, 60_001], False),
        ([0, 1, 100_000, 100_001, 100_002], True),
        ([0, 1], False),
    ],
)
def test_chattering_edges(times: list[int], chatters: bool) -> None:
    assert chattering(times) is chatters


def test_empty_window() -> None:
    k = kpis([], [], start_ms=0, end_ms=DAY)
    assert (k.activations, k.top10_share, k.flood_share) == (0, 0.0, 0.0)
    assert set(k.priority_distribution.values()) == {0.0}
