"""Rule timing edge cases: hysteresis, flapping, gaps, rate of change, backlog growth, loss, zones."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from analytics.alarm_conditions import (
    backlog_growing,
    hysteresis_episodes,
    level_active,
    loss_pct,
    new_zones,
    rates_per_min,
)
from analytics.alarms import Episode, threshold_episodes

W = 10_000
NOW = 10_000_000


def eps(
    values: Sequence[float], *, deadband: float, duration_ms: int = 20_000, now: int = NOW
) -> list[Episode]:
    b = [i * W for i in range(len(values))]
    return hysteresis_episodes(
        b, values, op=">", threshold=80.0, deadband=deadband, duration_ms=duration_ms, width_ms=W, now_ms=now
    )


FLAP = [70, 81, 82, 79, 81, 82, 79, 81, 82, 79, 81, 82, 70]
"""Around 80: two buckets above, one just below, three times, then well below."""


def test_flapping_without_deadband_raises_an_alarm_per_swing() -> None:
    got = eps(FLAP, deadband=0.0)
    assert [(e.raised_ms, e.cleared_ms) for e in got] == [
        (3 * W, 3 * W),
        (6 * W, 6 * W),
        (9 * W, 9 * W),
        (12 * W, 12 * W),
    ]


def test_a_deadband_turns_the_flapping_into_one_alarm() -> None:
    got = eps(FLAP, deadband=2.0)
    assert got == [Episode(raised_ms=3 * W, cleared_ms=12 * W, worst=82.0)]


def test_clear_needs_the_full_deadband() -> None:
    assert eps([81, 82, 78.5, 78.0, 90], deadband=2.0) == [
        Episode(raised_ms=2 * W, cleared_ms=3 * W, worst=82.0)
    ]
    # 78.5 is inside the 2-degree deadband: still active at the end, then cleared at 78.0 exactly.
    assert eps([81, 82, 78.5, 78.0], deadband=2.0)[0].cleared_ms == 3 * W


def test_a_gap_ends_the_alarm_at_the_last_data() -> None:
    b = [0, W, 2 * W, 5 * W]
    got = hysteresis_episodes(
        b, [81, 82, 83, 84], op=">", threshold=80, deadband=5, duration_ms=20_000, width_ms=W, now_ms=NOW
    )
    assert got == [Episode(raised_ms=20_000, cleared_ms=3 * W, worst=83.0)]


def test_active_only_while_data_are_current() -> None:
    vals = [81.0] * 5
    assert eps(vals, deadband=1, now=5 * W)[0].cleared_ms is None
    assert eps(vals, deadband=1, now=6 * W)[0].cleared_ms is None
    assert eps(vals, deadband=1, now=6 * W + 1)[0].cleared_ms == 5 * W


@pytest.mark.parametrize(
    "values",
    [[60, 90, 90, 90, 90, 90, 90, 60], [90] * 10, [60, 90, 60, 90, 90, 90, 90, 90, 90, 90, 60], [85.0] * 4],
)
def test_zero_deadband_matches_the_plain_threshold_rule(values: list[float]) -> None:
    b = [i * W for i in range(len(values))]
    plain = threshold_episodes(b, values, op=">", threshold=85.0, duration_ms=60_000, width_ms=W, now_ms=NOW)
    hyst = hysteresis_episodes(
        b, values, op=">", threshold=85.0, deadband=0.0, duration_ms=60_000, width_ms=W, now_ms=NOW
    )
    assert hyst == plain


def test_low_side_rule_with_deadband() -> None:
    b = [i * W for i in range(6)]
    got = hysteresis_episodes(
        b, [-110, -118, -119, -113, -116, -105], op="<=", threshold=-115, deadband=5,
        duration_ms=20_000, width_ms=W, now_ms=NOW,
    )  # fmt: skip
    assert got == [Episode(raised_ms=3 * W, cleared_ms=5 * W, worst=-119.0)]


def test_rate_of_change_skips_gaps() -> None:
    b, r = rates_per_min([0, W, 2 * W, 4 * W, 5 * W], [10, 12, 11, 50, 53], width_ms=W)
    assert b.tolist() == [W, 2 * W, 5 * W]
    assert r.tolist() == pytest.approx([12.0, 6.0, 18.0])


@pytest.mark.parametrize(
    ("backlog", "growing"),
    [
        ([0, 10, 20, 30], True),
        ([0, 10, 5, 30], False),  # it fell once: the agent is catching up
        ([5, 5, 5, 5], False),  # flat: no growth
        ([0, 0, 0, 1], False),  # below min_growth
    ],
)
def test_backlog_growing(backlog: list[float], growing: bool) -> None:
    ts = [0, 60_000, 120_000, 180_000]
    assert backlog_growing(ts, backlog, window_ms=180_000, min_growth=2, now_ms=180_000)[0] is growing


def test_backlog_needs_reports_covering_the_window() -> None:
    assert backlog_growing([100_000, 180_000], [0, 50], window_ms=180_000, min_growth=1, now_ms=180_000) == (
        False,
        0.0,
    )


def test_level_with_deadband_and_loss() -> None:
    assert loss_pct(95, 5) == pytest.approx(5.0)
    assert loss_pct(0, 0) != loss_pct(0, 0)  # NaN: nothing counted
    assert level_active(5.0, op=">", threshold=2.0, deadband=1.0, was_active=False)
    assert level_active(1.5, op=">", threshold=2.0, deadband=1.0, was_active=True)
    assert not level_active(1.0, op=">", threshold=2.0, deadband=1.0, was_active=True)
    assert level_active(float("nan"), op=">", threshold=2.0, deadband=1.0, was_active=True)


def test_new_zones_share_no_cell_with_known_ones() -> None:
    known = [frozenset({1, 2}), frozenset({7})]
    current = [frozenset({2, 3}), frozenset({9, 10}), frozenset({7})]
    assert new_zones(current, known) == [frozenset({9, 10})]
