"""Live views: coverage requests for "the last L, up to now", answered as of a recent refresh.

A request without ``to`` asks for a window that ends now; a dashboard asks for one every few
seconds, each with another ``from``, so no two are the same window and each would be a first
request (seconds on a large store). Such a request is a *live view*: its park(s), operator,
technology and resolution, and its length (``now - from``, rounded to whole minutes). Its window
is pinned to an end ``T`` (whole seconds): ``[T - length, T)``.

- A view's end is the newest one whose results are in the cache, while it is at most
  ``max_age_s`` old; otherwise the end the refresher is computing, if any (the request waits for
  that computation instead of doing it a second time); otherwise the request's own time becomes
  the view's end and the request computes it (exactly, like any first request; identical
  requests meanwhile wait for it).
- A refresher advances the end of every view asked for within ``keep_s`` once it is
  ``refresh_s`` old: it computes the new window in the background, **one view at a time**, and
  only then moves the view's end, so a request never waits for a refresh. After each computation
  it pauses as long as the computation took (at most half of one thread), so the ingester of the
  same process is never starved.

So a live answer covers ``[T - length, T)`` with ``now - T <= max_age_s``, computed exactly over
the rows stored when it was computed (after ``T``); the answer states ``T`` as ``as_of``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from storage.query import Scope

log = logging.getLogger(__name__)

MAX_VIEWS = 32
"""Live views kept at most; the one asked for least recently is forgotten first."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LiveView:
    """What a live request asks for, without its window: ``scope``'s window is a placeholder."""

    scope: Scope
    resolution: int
    length_s: int


@dataclass(slots=True)
class _State:
    end: datetime
    """The newest end whose results are computed (or being computed by a first request)."""
    asked: datetime
    """When a request last asked for the view."""


@dataclass(slots=True)
class RefreshStats:
    """Counters of the refresher (exported on ``/metrics``)."""

    refreshes: int = 0
    errors: int = 0
    busy_s: float = 0.0


class LiveViews:
    """The live views asked for and the end each is answered as of.

    Args:
        max_age_s: how old a view's end may be when it answers a request (0: live views off:
            every request is computed up to its own time).
        refresh_s: a view's end older than this is advanced in the background.
        keep_s: a view not asked for this long is no longer refreshed (and forgotten).
        clock: the current time (UTC); tests and the bench inject theirs.
    """

    def __init__(
        self,
        *,
        max_age_s: float,
        refresh_s: float,
        keep_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.max_age_s = max_age_s
        self.refresh_s = refresh_s
        self.keep_s = keep_s
        self.clock = clock
        self.stats = RefreshStats()
        self._views: dict[LiveView, _State] = {}
        self._pending: dict[LiveView, datetime] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0

    def now_end(self) -> datetime:
        """The current time in whole seconds: the end of a window computed now."""
        return self.clock().replace(microsecond=0)

    def pin(self, scope: Scope, resolution: int) -> Scope:
        """The scope a request for ``scope`` (ending now) is answered with: ``[T - length, T)``,
        ``T`` the view's end if it is at most ``max_age_s`` old, else now (and the view's end from
        now on). The result is marked ``live`` (see :class:`storage.query.Scope`)."""
        length_s = round((scope.end - scope.start).total_seconds() / 60) * 60
        if length_s <= 0:
            return scope
        view = LiveView(
            scope=replace(scope, start=_EPOCH, end=_EPOCH, live=False),
            resolution=resolution,
            length_s=length_s,
        )
        now = self.clock()
        with self._lock:
            state = self._views.get(view)
            pending = self._pending.get(view)
            if state is not None and (now - state.end).total_seconds() <= self.max_age_s:
                end = state.end
            elif state is not None and pending is not None:
                # Being refreshed: wait for that computation (single flight in the cache)
                # rather than compute the same view a second time beside it.
                end = pending
            else:
                end = now.replace(microsecond=0)
                state = self._views[view] = _State(end=end, asked=now)
                while len(self._views) > MAX_VIEWS:
                    oldest = min(self._views, key=lambda v: self._views[v].asked)
                    del self._views[oldest]
            state.asked = now
        return window_of(view, end)

    def due(self) -> list[LiveView]:
        """The views to refresh now, the one with the oldest end first; forgets views nobody asked
        for within ``keep_s``."""
        now = self.clock()
        with self._lock:
            for v in [v for v, s in self._views.items() if (now - s.asked).total_seconds() > self.keep_s]:
                del self._views[v]
            due = [
                (s.end, i, v)
                for i, (v, s) in enumerate(self._views.items())
                if (now - s.end).total_seconds() >= self.refresh_s
            ]
        return [v for _, _, v in sorted(due)]

    def begin(self, view: LiveView, end: datetime) -> None:
        """The refresher starts computing ``view`` as of ``end``."""
        with self._lock:
            self._pending[view] = end

    def advance(self, view: LiveView, end: datetime | None) -> None:
        """``view``'s results as of ``end`` are computed (None: the refresh failed): requests
        get them from now on."""
        with self._lock:
            self._pending.pop(view, None)
            state = self._views.get(view)
            if end is None:
                return
            if state is not None and end > state.end:
                state.end = end

    def end_of(self, view: LiveView) -> datetime | None:
        with self._lock:
            state = self._views.get(view)
        return None if state is None else state.end

    def views(self) -> list[LiveView]:
        with self._lock:
            return list(self._views)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(view: LiveView, end: datetime) -> Scope:
    """The live scope of ``view`` ending at ``end``."""
    return replace(view.scope, start=end - timedelta(seconds=view.length_s), end=end, live=True)


def refresh_one(views: LiveViews, warm: Callable[[Scope, int], None]) -> float | None:
    """Advance the most overdue view: compute its window ending now with ``warm`` (blocking),
    then move its end. The seconds it took, or None when no view was due."""
    due = views.due()
    if not due:
        return None
    view = due[0]
    end = views.now_end()
    t0 = time.perf_counter()
    views.begin(view, end)
    try:
        warm(window_of(view, end), view.resolution)
    except Exception:  # the top of the refresher: logged and counted; the view keeps its end
        views.advance(view, None)
        views.stats.errors += 1
        log.warning("background refresh of a live coverage view failed", exc_info=True)
    else:
        views.advance(view, end)
        views.stats.refreshes += 1
    took = time.perf_counter() - t0
    views.stats.busy_s += took
    return took


async def run(
    views: LiveViews, warm: Callable[[Scope, int], None], *, stop: asyncio.Event, poll_s: float = 1.0
) -> None:
    """The refresher: one view at a time on a worker thread, a pause as long as each computation
    after it, until ``stop`` is set."""
    while not stop.is_set():
        took = await asyncio.to_thread(refresh_one, views, warm)
        pause = poll_s if took is None else max(took, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
