"""A production machine: state machine, thermal inertia, vibration that rises before faults.

States: ``running`` (makes parts), ``idle`` (starved of material, random), ``fault`` (random with
mean time between failures ``mtbf_h``, or scheduled), ``setup`` (after a repair, after maintenance,
at start) and ``off`` (planned maintenance every ``maintenance_every_h``). A fault is drawn ahead
of time; during the last :data:`PRECURSOR_S` before it, vibration, spindle load, spindle temperature
and the reject rate rise, as bearing wear does before a breakdown. Maintenance renews the machine
(the next random fault is drawn again).

Temperatures follow first-order lags towards a state- and load-dependent target
(time constants :data:`SPINDLE_TAU_S`, :data:`MOTOR_TAU_S`). All draws come from one
``random.Random`` seeded with the scenario seed and the device's identity.
"""

from __future__ import annotations

import math
import random
from typing import Final, Literal

from firmware_sim.scenario import MachineSpec

State = Literal["off", "idle", "running", "fault", "setup"]
STATE_CODES: Final[dict[str, int]] = {"off": 0, "idle": 1, "running": 2, "fault": 3, "setup": 4}
"""Register value of each state (register 0 of the machine map)."""

PRECURSOR_S: Final = 1800.0
SPINDLE_TAU_S: Final = 600.0
MOTOR_TAU_S: Final = 900.0
IDLE_RATE_PER_H: Final = 0.25
_POWER_SHARE: Final[dict[str, float]] = {"off": 0.0, "idle": 0.12, "setup": 0.2, "fault": 0.05}


class MachineModel:
    """One machine; call :meth:`step` with a fixed ``dt_s`` to advance simulated time."""

    def __init__(self, spec: MachineSpec, *, seed: str, ambient_c: float = 30.0) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:machine:{spec.id}")
        self.ambient_c = ambient_c
        self.t_s = 0.0
        self.state: State = "setup"
        self._state_left_s = spec.setup_min * 60.0 * self.rng.uniform(0.1, 1.0)
        self.spindle_temp_c = ambient_c + self.rng.uniform(0.0, 5.0)
        self.motor_temp_c = ambient_c + self.rng.uniform(0.0, 5.0)
        self.vibration_mm_s = 0.0
        self.spindle_load_pct = 0.0
        self.parts_total = self.rng.randrange(10_000, 2_000_000)
        self.rejects_total = int(self.parts_total * spec.reject_pct / 100.0)
        self.power_kw = 0.0
        self._cycle = self.rng.random()
        self._next_fault_s = self._draw_time_to_fault()
        self._next_maint_s = spec.maintenance_every_h * 3600.0 * self.rng.uniform(0.3, 1.0)
        self._scheduled = sorted((f.at_h * 3600.0, f.duration_min * 60.0) for f in spec.faults)

    def _draw_time_to_fault(self) -> float:
        return self.t_s + max(PRECURSOR_S / 2, self.rng.expovariate(1.0 / (self.spec.mtbf_h * 3600.0)))

    def _enter(self, state: State, duration_s: float) -> None:
        self.state = state
        self._state_left_s = duration_s

    def precursor(self) -> float:
        """0 far from the next fault, rising to 1 at the fault (random or scheduled)."""
        until = self._next_fault_s - self.t_s
        if self._scheduled:
            until = min(until, self._scheduled[0][0] - self.t_s)
        return min(1.0, max(0.0, 1.0 - until / PRECURSOR_S))

    def step(self, dt_s: float) -> None:
        """Advance by ``dt_s`` simulated seconds."""
        spec = self.spec
        rng = self.rng
        self.t_s += dt_s
        self._state_left_s -= dt_s
        ramp = self.precursor()
        if self._scheduled and self.t_s >= self._scheduled[0][0]:
            _, duration = self._scheduled.pop(0)
            self._enter("fault", duration)
        elif self.state == "running" and self.t_s >= self._next_fault_s:
            self._enter("fault", max(120.0, rng.expovariate(1.0 / (spec.mttr_min * 60.0))))
            self._next_fault_s = math.inf
        elif self.state in ("running", "idle") and self.t_s >= self._next_maint_s:
            self._enter("off", spec.maintenance_min * 60.0)
            self._next_maint_s += spec.maintenance_every_h * 3600.0
        elif self.state == "running" and rng.random() < IDLE_RATE_PER_H * dt_s / 3600.0:
            self._enter("idle", rng.uniform(120.0, 900.0))
        elif self._state_left_s <= 0.0 and self.state != "running":
            if self.state in ("fault", "off"):
                if self._next_fault_s == math.inf or self.state == "off":
                    self._next_fault_s = self._draw_time_to_fault()
                self._enter("setup", spec.setup_min * 60.0 * rng.uniform(0.5, 1.5))
            else:
                self._enter("running", math.inf)

        running = self.state == "running"
        if running:
            self._cycle += dt_s / spec.cycle_s * rng.uniform(0.95, 1.05)
            while self._cycle >= 1.0:
                self._cycle -= 1.0
                self.parts_total += 1
                if rng.random() < spec.reject_pct / 100.0 * (1.0 + 3.0 * ramp):
                    self.rejects_total += 1
            wave = math.sin(2.0 * math.pi * self.t_s / (spec.cycle_s * 5.0))
            self.spindle_load_pct = max(0.0, 60.0 + 15.0 * wave + 12.0 * ramp + rng.gauss(0.0, 2.0))
            vib_target = 1.8 + 0.02 * self.spindle_load_pct + 6.0 * ramp**2
        else:
            self.spindle_load_pct = {"idle": 3.0, "setup": 10.0}.get(self.state, 0.0)
            vib_target = {"idle": 0.4, "setup": 0.8, "fault": 0.2}.get(self.state, 0.0)
        self.vibration_mm_s = max(0.0, vib_target + rng.gauss(0.0, 0.05))
        load = self.spindle_load_pct
        if running:
            spindle_target = self.ambient_c + 15.0 + 0.35 * load + 15.0 * ramp
            motor_target = self.ambient_c + 10.0 + 0.3 * load
        else:
            extra = {"idle": 8.0, "setup": 5.0, "fault": 5.0}.get(self.state, 0.0)
            spindle_target = motor_target = self.ambient_c + extra
        self.spindle_temp_c += (spindle_target - self.spindle_temp_c) * (
            1.0 - math.exp(-dt_s / SPINDLE_TAU_S)
        )
        self.motor_temp_c += (motor_target - self.motor_temp_c) * (1.0 - math.exp(-dt_s / MOTOR_TAU_S))
        share = 0.35 + 0.65 * load / 100.0 if running else _POWER_SHARE.get(self.state, 0.0)
        self.power_kw = spec.nominal_kw * share
