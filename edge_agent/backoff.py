"""Capped, jittered exponential backoff (injectable in tests)."""

from __future__ import annotations

import random
from collections.abc import Callable

Backoff = Callable[[int], float]
"""A function from the attempt number (1, 2, ...) to the delay in seconds before it."""


def jittered_backoff(min_s: float, max_s: float, *, rng: random.Random | None = None) -> Backoff:
    """Full-jitter exponential backoff: uniform in [d/2, d] with d = min(max_s, min_s * 2**(n-1))."""
    r = rng or random.Random()

    def delay(attempt: int) -> float:
        d: float = min(max_s, min_s * 2.0 ** max(0, min(attempt - 1, 30)))
        return d / 2 + r.random() * d / 2

    return delay
