"""Simulated time: a start instant and a speed factor over a monotonic real clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated time that runs ``speed`` times faster than the real clock.

    Args:
        start_ms: simulated epoch milliseconds at start; 0 means the wall clock now.
        speed: simulated seconds per real second.
        monotonic: the real clock (injectable so tests can drive time).
    """

    def __init__(
        self,
        *,
        start_ms: int = 0,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start_ms = start_ms or int(time.time() * 1000)
        self.speed = speed
        self._monotonic = monotonic
        self._t0 = monotonic()

    def elapsed_s(self) -> float:
        """Simulated seconds since start."""
        return (self._monotonic() - self._t0) * self.speed

    def now_ms(self) -> int:
        """Simulated epoch milliseconds, UTC."""
        return self.start_ms + int(self.elapsed_s() * 1000)
