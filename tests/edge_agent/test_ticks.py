"""Shared collector ticks: where the next read goes, and one timer shared by all its sleepers."""

from __future__ import annotations

import asyncio
import math

import pytest

from edge_agent.ticks import Ticks, next_tick


@pytest.mark.parametrize(
    ("now_s", "interval_s", "after", "expected_k"),
    [
        (100.03, 0.1, 0, 1001),  # the first tick after now
        (100.0, 0.1, 1000, 1001),  # woken exactly on tick 1000: the next one, never the same again
        (99.99999999, 0.1, 1000, 1001),  # woken a hair early by float rounding: still the next one
        (100.35, 0.1, 1000, 1004),  # a read that overran three ticks skips them
        (7.0, 2.5, 0, 3),
        (0.0, 60.0, 0, 1),
    ],
)
def test_next_tick(now_s: float, interval_s: float, after: int, expected_k: int) -> None:
    k, when_s = next_tick(now_s, interval_s, after=after)
    assert k == expected_k and when_s == k * interval_s and when_s > now_s - 1e-6


def test_devices_of_one_interval_share_their_ticks_exactly() -> None:
    # Different devices finishing their reads at different moments of the same tick get the
    # same float for the next one: the event loop wakes once for all of them.
    ends = [12345.6001, 12345.6123, 12345.6999]
    assert len({next_tick(t, 0.1, after=123456)[1] for t in ends}) == 1
    assert math.isclose(next_tick(ends[0], 0.1, after=123456)[1], 12345.7)


async def test_sleepers_of_one_tick_all_wake_and_a_cancelled_one_does_not_disturb_the_others() -> None:
    loop = asyncio.get_running_loop()
    ticks = Ticks()
    when_s = loop.time() + 0.05
    sleepers = [asyncio.create_task(ticks.sleep_until(when_s)) for _ in range(5)]
    await asyncio.sleep(0)  # one turn of the loop: every sleeper has registered
    sleepers[2].cancel()
    _, pending = await asyncio.wait(sleepers, timeout=10)
    assert not pending
    assert [t.cancelled() for t in sleepers] == [False, False, True, False, False]
    assert loop.time() >= when_s
    # A time already past wakes at once.
    await asyncio.wait_for(ticks.sleep_until(loop.time() - 1.0), 5)
