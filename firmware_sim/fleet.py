"""Fleet mode: many virtual gateways publishing contract batches over MQTT (load generator)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_sim.errors import SimError
from firmware_sim.scenario import Scenario


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetOptions:
    """What ``parkwatch sim fleet`` was asked to do."""

    gateways: int
    rate: float
    duration_s: float
    host: str
    port: int
    root: str = "parkwatch"
    username: str | None = None
    password: str | None = None


async def run_fleet_cli(
    scenario: Scenario, options: FleetOptions, *, summary_json: str | None, quiet: bool
) -> int:
    """Run the fleet and print its summary; return the exit code."""
    raise SimError("fleet mode is not available in this build yet")
