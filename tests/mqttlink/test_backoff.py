"""The one reconnect backoff: capped, jittered, exponential from attempt 1."""

from __future__ import annotations

import random

import pytest

from mqttlink import jittered_backoff


@pytest.mark.parametrize(
    ("attempt", "low_s", "high_s"),
    [(0, 0.25, 0.5), (1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (7, 5.0, 10.0), (10_000, 5.0, 10.0)],
)
def test_delay_is_within_half_to_full_of_the_capped_exponential(
    attempt: int, low_s: float, high_s: float
) -> None:
    delay = jittered_backoff(0.5, 10.0, rng=random.Random(attempt))
    samples = [delay(attempt) for _ in range(200)]
    assert all(low_s <= d <= high_s for d in samples)
    assert max(samples) - min(samples) > (high_s - low_s) / 2  # jittered, not constant
