"""The evaluator's loop in the API process: take the lease, evaluate, notify, wait, repeat.

One supervised loop (the top that may catch every error, log it and count it). A replica that
does not hold the lease only waits; the lease lasts three intervals, so a replica that dies is
replaced within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.alarms.engine import AlarmEngine, wall_ms
from storage.query import QueryError

log = logging.getLogger("parkwatch.alarms")


@dataclass(slots=True)
class LoopStats:
    """Counters of the loop (shown on ``/metrics``)."""

    evaluations: int = 0
    errors: int = 0
    raised: int = 0
    cleared: int = 0


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run(
    engine: AlarmEngine,
    *,
    interval_s: float,
    stop: asyncio.Event,
    stats: LoopStats,
    notify: Callable[[], Awaitable[None]] | None = None,
    holder: str | None = None,
    first_now: bool = False,
) -> None:
    """Evaluate every ``interval_s`` (the first time one interval after the start, or at once with
    ``first_now``) until ``stop`` is set."""
    me = holder or holder_id()
    ttl_ms = int(interval_s * 3000)
    if not first_now:
        # Let the platform come up (in one process, the ingester's first writes) before reading.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stop.wait()
    while not stop.is_set():
        try:
            now = wall_ms()
            if await asyncio.to_thread(engine.store.take_lease, "evaluator", me, now_ms=now, ttl_ms=ttl_ms):
                report = await asyncio.to_thread(engine.evaluate, now)
                stats.evaluations += 1
                stats.raised += report.raised
                stats.cleared += report.cleared
                for rule_id, why in report.broken_rules.items():
                    log.warning("alarm rule %s is not evaluated: %s", rule_id, why)
                if report.raised or report.cleared:
                    log.info("alarms: %d raised, %d cleared", report.raised, report.cleared)
                if notify is not None:
                    await notify()
        except QueryError as exc:  # the database is away: the next round tries again
            stats.errors += 1
            log.warning(
                "alarm evaluation: the database did not answer (%s); retrying in %.0f s", exc, interval_s
            )
        except Exception:  # the top of a supervised loop: log, count, go on
            stats.errors += 1
            log.exception("alarm evaluation failed; retrying in %.0f s", interval_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stop.wait()
