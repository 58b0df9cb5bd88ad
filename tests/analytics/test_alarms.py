"""Alarm rule timing edge cases: exact duration, gaps, equality, active vs cleared, offline gateways."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from analytics.alarms import Episode, offline_episodes, threshold_episodes

W = 10_000  # 10 s buckets
NOW = 10_000_000


def run(
    values: Sequence[float | None],
    *,
    start: int = 0,
    duration_ms: int = 60_000,
    op: str = ">",
    now: int = NOW,
) -> list[Episode]:
    b = [start + i * W for i, v in enumerate(values) if v is not None]
    v = [x for x in values if x is not None]
    return threshold_episodes(b, v, op=op, threshold=85.0, duration_ms=duration_ms, width_ms=W, now_ms=now)  # type: ignore[arg-type]


def test_exactly_the_duration_raises() -> None:
    eps = run([60, 90, 90, 90, 90, 90, 90, 60])  # 6 buckets = 60 s above
    assert eps == [Episode(raised_ms=W + 60_000, cleared_ms=7 * W, worst=90.0)]


def test_one_bucket_short_does_not_raise() -> None:
    assert run([60, 90, 90, 90, 90, 90, 60]) == []


def test_equal_to_threshold_is_not_above() -> None:
    assert run([85.0] * 10) == []
    assert run([85.0] * 10, op=">=")[0].raised_ms == 60_000


def test_a_data_gap_breaks_the_run() -> None:
    assert run([90, 90, 90, None, 90, 90, 90]) == []


def test_zero_duration_raises_at_the_first_passing_bucket() -> None:
    eps = run([60, 95, 60], duration_ms=0)
    assert len(eps) == 1 and eps[0].raised_ms == W and eps[0].cleared_ms == 2 * W and eps[0].worst == 95.0


def test_active_when_the_run_reaches_the_current_bucket() -> None:
    values = [90.0] * 8
    last_end = 8 * W
    assert run(values, now=last_end)[0].active
    assert run(values, now=last_end + W)[0].active  # one bucket of grace for data in flight
    assert not run(values, now=last_end + 2 * W + 1)[0].active


def test_below_rules_and_two_episodes() -> None:
    eps = run([80, 80, 80, 80, 80, 80, 90, 80, 80, 80, 80, 80, 80, 90], op="<")
    assert [(e.raised_ms, e.cleared_ms, e.worst) for e in eps] == [
        (60_000, 6 * W, 80.0),
        (7 * W + 60_000, 13 * W, 80.0),
    ]


MIN = 60_000


@pytest.mark.parametrize(
    ("ts", "states", "now", "last_seen", "expected"),
    [
        # offline 10 min, then back: one cleared episode raised 5 min after the Last Will
        ([0, 10 * MIN], ["offline", "online"], 20 * MIN, 20 * MIN, [(5 * MIN, 10 * MIN)]),
        # offline for 4 min only: nothing
        ([0, 4 * MIN], ["offline", "online"], 20 * MIN, 20 * MIN, []),
        # exactly 5 min offline: raised and cleared at the same instant
        ([0, 5 * MIN], ["offline", "online"], 20 * MIN, 20 * MIN, [(5 * MIN, 5 * MIN)]),
        # still offline: active
        ([0], ["offline"], 7 * MIN, None, [(5 * MIN, None)]),
        # repeated offline messages do not restart the clock
        ([0, 2 * MIN, 4 * MIN], ["offline", "offline", "offline"], 6 * MIN, None, [(5 * MIN, None)]),
        # claims online but silent since 1 min: stale, offline since last seen
        ([0], ["online"], 10 * MIN, 1 * MIN, [(6 * MIN, None)]),
        # online and heard of recently: nothing
        ([0], ["online"], 10 * MIN, 9 * MIN, []),
    ],
)
def test_gateway_offline(
    ts: list[int], states: list[str], now: int, last_seen: int | None, expected: list[tuple[int, int | None]]
) -> None:
    eps = offline_episodes(ts, states, after_ms=5 * MIN, now_ms=now, last_seen_ms=last_seen, stale_ms=5 * MIN)
    assert [(e.raised_ms, e.cleared_ms) for e in eps] == expected
