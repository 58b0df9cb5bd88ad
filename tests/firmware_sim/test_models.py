"""Device models: seeded reproducibility, fault precursors, thermal inertia, counters."""

from __future__ import annotations

import itertools

import msgspec

from firmware_sim.models.machine import PRECURSOR_S, MachineModel
from firmware_sim.scenario import MachineSpec, Scenario, ScheduledFault
from firmware_sim.world import World, route_position

START_MS = 1_790_000_000_000


def _snapshot(world: World) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for gw in world.gateways.values():
        for m in gw.machines.values():
            out.append((m.state, m.spindle_temp_c, m.vibration_mm_s, m.parts_total, m.rejects_total))
        for e in gw.meters.values():
            out.append((e.power_kw, e.energy_wh))
        for s in gw.environment.values():
            out.append((s.temp_c, s.co2_ppm))
    return out


def test_same_seed_same_values_different_seed_different(scenario: Scenario) -> None:
    a = World(scenario, start_ms=START_MS)
    b = World(scenario, start_ms=START_MS)
    other = msgspec.structs.replace(
        scenario, sim=msgspec.structs.replace(scenario.sim, seed=scenario.sim.seed + 1)
    )
    c = World(other, start_ms=START_MS)
    # b gets there in uneven hops: the values depend on simulated time only.
    a.advance_to(900.0)
    for t in (1.0, 7.0, 450.5, 900.0):
        b.advance_to(t)
    c.advance_to(900.0)
    assert _snapshot(a) == _snapshot(b)
    assert _snapshot(a) != _snapshot(c)


def test_radio_links_are_reproducible(scenario: Scenario) -> None:
    a = World(scenario, start_ms=START_MS)
    b = World(scenario, start_ms=START_MS)
    probe = next(gw for _, gw in scenario.gateways() if gw.id == "dv-probe-01")
    for modem in probe.modems:
        assert a.link(probe.id, modem, 123.0) == b.link(probe.id, modem, 123.0)
    moving = [a.link(probe.id, probe.modems[0], t).rsrp_dbm for t in range(0, 600, 60)]
    assert len(set(moving)) > 5


def test_vibration_rises_before_a_scheduled_fault_and_temperatures_lag() -> None:
    spec = MachineSpec(
        id="m1", line="l1", mtbf_h=10_000.0, maintenance_every_h=10_000.0, setup_min=1.0,
        faults=[ScheduledFault(at_h=2.0, duration_min=30.0)],
    )  # fmt: skip
    m = MachineModel(spec, seed="t")
    vib_calm: list[float] = []
    vib_late: list[float] = []
    temps: list[float] = []
    states: list[str] = []
    parts_before = m.parts_total
    while m.t_s < 2 * 3600 + 60:
        m.step(1.0)
        states.append(m.state)
        temps.append(m.spindle_temp_c)
        if m.state == "running" and 3600 <= m.t_s < 3600 + 600:
            vib_calm.append(m.vibration_mm_s)
        if m.state == "running" and 2 * 3600 - 300 <= m.t_s < 2 * 3600:
            vib_late.append(m.vibration_mm_s)
    assert states[-1] == "fault"
    assert "running" in states
    assert sum(vib_late) / len(vib_late) > 2.0 * sum(vib_calm) / len(vib_calm)
    assert max(abs(b - a) for a, b in itertools.pairwise(temps)) < 0.2  # inertia: no jumps
    assert m.parts_total > parts_before and m.rejects_total >= 0
    assert PRECURSOR_S <= 3600


def test_machine_eventually_recovers_and_counts_only_up() -> None:
    spec = MachineSpec(id="m2", line="l1", mtbf_h=0.5, mttr_min=5.0, setup_min=2.0, cycle_s=10.0)
    m = MachineModel(spec, seed="t2")
    seen: set[str] = set()
    last = m.parts_total
    for _ in range(6 * 3600):
        m.step(1.0)
        seen.add(m.state)
        assert m.parts_total >= last
        last = m.parts_total
    assert {"running", "fault", "setup"} <= seen


def test_route_position_loops(scenario: Scenario) -> None:
    probe = next(gw for _, gw in scenario.gateways() if gw.id == "dv-probe-01")
    assert probe.route is not None
    start = route_position(probe.route, 0.0)
    assert start[:2] == (probe.route.waypoints[0][0], probe.route.waypoints[0][1])
    lat, lon, _ = route_position(probe.route, 60.0)
    assert (lat, lon) != start[:2]
