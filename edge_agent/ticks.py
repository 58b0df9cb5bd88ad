"""When collectors read: shared ticks on the monotonic clock.

Collector reads are placed on ticks ``k * interval_s`` of the event loop's clock
(``loop.time()``), so collectors of the same interval read in the same event-loop wake-up,
and :class:`Ticks` lets all the tasks waiting for one tick share one timer. On a gateway
reading 20 devices ten times a second that is 10 wake-ups and timers a second instead of 200
(telegraf's ``round_interval`` does the same for its inputs).
"""

from __future__ import annotations

import asyncio
import math


def next_tick(now_s: float, interval_s: float, *, after: int = 0) -> tuple[int, float]:
    """The next read: tick ``k`` at ``k * interval_s``, the first one after ``now_s`` and after
    tick ``after``; returns ``(k, k * interval_s)``.

    A read that overran its interval thus skips the missed ticks instead of reading in a burst,
    which could stamp two readings of a series in the same millisecond.
    """
    k = max(after + 1, math.floor(now_s / interval_s) + 1)
    return k, k * interval_s


class Ticks:
    """Sleeps until a time of the event loop's clock, one timer per distinct time for all its sleepers."""

    def __init__(self) -> None:
        self._waiting: dict[float, list[asyncio.Future[None]]] = {}

    async def sleep_until(self, when_s: float) -> None:
        """Sleep until the event loop's clock reaches ``when_s`` (cancellable as any sleep)."""
        loop = asyncio.get_running_loop()
        waiters = self._waiting.get(when_s)
        if waiters is None:
            waiters = self._waiting[when_s] = []
            loop.call_at(when_s, self._wake, when_s)
        fut: asyncio.Future[None] = loop.create_future()
        waiters.append(fut)
        await fut

    def _wake(self, when_s: float) -> None:
        for fut in self._waiting.pop(when_s, ()):
            if not fut.done():
                fut.set_result(None)
