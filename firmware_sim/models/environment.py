"""An environment sensor: temperature, humidity, PM2.5, noise and CO2 over a Hai Phong day.

Daily cycles in local time (UTC+7) plus slow seeded random walks (AR(1)); indoor sensors are
warmer, louder during shifts (06:00-22:00) and see more CO2.
"""

from __future__ import annotations

import math
import random

from firmware_sim.scenario import EnvironmentSpec


class EnvironmentModel:
    """One sensor."""

    def __init__(self, spec: EnvironmentSpec, *, seed: str, start_ms: int) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:environment:{spec.id}")
        self.start_ms = start_ms
        self.t_s = 0.0
        self._walk = [0.0, 0.0, 0.0]
        self.temp_c = self.humidity_pct = self.pm25_ug_m3 = self.noise_dba = self.co2_ppm = 0.0
        self.step(0.0)

    def step(self, dt_s: float) -> None:
        """Advance by ``dt_s`` simulated seconds."""
        self.t_s += dt_s
        keep = math.exp(-dt_s / 1800.0)
        self._walk = [w * keep + self.rng.gauss(0.0, math.sqrt(1.0 - keep * keep)) for w in self._walk]
        hour = ((self.start_ms / 1000.0 + self.t_s) / 3600.0 + 7.0) % 24.0
        day = math.sin(2.0 * math.pi * (hour - 9.0) / 24.0)
        shift = 1.0 if 6.0 <= hour < 22.0 else 0.0
        indoor = self.spec.indoor
        self.temp_c = 28.0 + 4.0 * day + (3.0 if indoor else 0.0) + 0.8 * self._walk[0]
        self.humidity_pct = min(
            100.0, max(20.0, 80.0 - 12.0 * day - (8.0 if indoor else 0.0) + 3.0 * self._walk[1])
        )
        self.pm25_ug_m3 = max(0.0, 38.0 + 12.0 * shift + 10.0 * self._walk[2] + self.rng.gauss(0.0, 1.5))
        self.noise_dba = (72.0 if indoor else 58.0) + 10.0 * shift + self.rng.gauss(0.0, 1.2)
        self.co2_ppm = (
            (520.0 + 280.0 * shift if indoor else 430.0) + 25.0 * self._walk[0] + self.rng.gauss(0.0, 5.0)
        )
