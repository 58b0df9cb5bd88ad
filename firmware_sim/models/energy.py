"""An energy meter feeding a base load plus some machines: power, voltage, current, PF, energy.

Power is the base load (with a slow daily swing) plus the machines' power at the same step;
voltage is 400 V three-phase with small noise; the power factor improves with load;
current = P / (sqrt(3) V PF); the energy counter integrates power.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from firmware_sim.models.machine import MachineModel
from firmware_sim.scenario import MeterSpec

NOMINAL_VOLTAGE_V = 400.0


class EnergyModel:
    """One meter; step it after the machines it feeds."""

    def __init__(
        self, spec: MeterSpec, *, seed: str, machines: Sequence[MachineModel], start_ms: int
    ) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:energy:{spec.id}")
        self.machines = list(machines)
        self.start_ms = start_ms
        self.t_s = 0.0
        self.energy_wh = float(self.rng.randrange(5 * 10**9, 5 * 10**10))
        self.power_kw = spec.base_kw
        self.voltage_v = NOMINAL_VOLTAGE_V
        self.power_factor = 0.9
        self.current_a = 0.0
        self._capacity_kw = spec.base_kw + sum(m.spec.nominal_kw for m in self.machines) or 1.0

    def step(self, dt_s: float) -> None:
        """Advance by ``dt_s`` simulated seconds."""
        self.t_s += dt_s
        hour = ((self.start_ms / 1000.0 + self.t_s) / 3600.0 + 7.0) % 24.0  # Vietnam, UTC+7
        base = self.spec.base_kw * (0.85 + 0.15 * math.sin(2.0 * math.pi * (hour - 8.0) / 24.0))
        power = base + sum(m.power_kw for m in self.machines)
        self.power_kw = max(0.0, power * (1.0 + self.rng.gauss(0.0, 0.005)))
        self.voltage_v = NOMINAL_VOLTAGE_V * (1.0 + self.rng.gauss(0.0, 0.004))
        self.power_factor = min(0.99, 0.78 + 0.17 * min(1.0, self.power_kw / self._capacity_kw))
        self.current_a = self.power_kw * 1000.0 / (math.sqrt(3.0) * self.voltage_v * self.power_factor)
        self.energy_wh += self.power_kw * 1000.0 * dt_s / 3600.0
