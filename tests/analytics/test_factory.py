"""OEE and energy on hand-computed fixtures."""

from __future__ import annotations

import math

import pytest

from analytics.factory import (
    EnergyUse,
    Production,
    counter_increase,
    group_peak_kw,
    machine_production,
    meter_energy,
    rollup,
    state_durations_ms,
)

MIN = 60_000


def test_state_durations_hold_until_next_sample_capped_by_max_hold_and_window() -> None:
    # running at 0, idle at 10 min, silence from 12 min (max hold 5 min), fault at 30 min; window ends at 40.
    d = state_durations_ms(
        [0, 10 * MIN, 30 * MIN], ["running", "idle", "fault"], end_ms=40 * MIN, max_hold_ms=5 * MIN
    )
    assert d["running"] == 5 * MIN  # capped: the next sample came 10 min later
    assert d["idle"] == 5 * MIN
    assert d["fault"] == 5 * MIN
    assert d["off"] == d["setup"] == 0


def test_state_durations_clip_to_window_start() -> None:
    d = state_durations_ms(
        [-2 * MIN, 1 * MIN], ["running", "idle"], start_ms=0, end_ms=2 * MIN, max_hold_ms=10 * MIN
    )
    assert d == {"off": 0, "idle": MIN, "running": MIN, "fault": 0, "setup": 0}


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        ([100, 105, 110], 10.0),
        ([100, 100, 100], 0.0),
        ([100, 110, 3, 8], 18.0),  # reset after 110: 10 + 3 + 5
        ([float("nan"), 5, 7], 2.0),
        ([42], 0.0),
        ([], 0.0),
    ],
)
def test_counter_increase(series: list[float], expected: float) -> None:
    assert counter_increase(series) == expected


def test_oee_hand_computed() -> None:
    # 8 h shift sampled every 30 min: 6 h running, 1 h fault, 30 min setup, 30 min off (not planned).
    states = ["running"] * 12 + ["fault"] * 2 + ["setup"] + ["off"]
    ts = [i * 30 * MIN for i in range(16)]
    parts = [1000 + 50 * min(i, 12) for i in range(16)]  # 600 parts, all while running
    rejects = [10 + 3 * min(i, 12) for i in range(16)]  # 36 rejects
    p = machine_production(
        ts_ms=ts,
        states=states,
        parts_total=parts,
        rejects_total=rejects,
        ideal_cycle_s=30.0,
        start_ms=0,
        end_ms=8 * 60 * MIN,
        max_hold_ms=60 * MIN,
    )
    assert p.planned_ms == 7.5 * 60 * MIN and p.run_ms == 6 * 60 * MIN
    assert p.availability == pytest.approx(6 / 7.5)
    assert p.performance == pytest.approx(600 * 30 / (6 * 3600))  # 0.8333
    assert p.quality == pytest.approx(564 / 600)
    assert p.oee == pytest.approx(0.8 * (600 * 30 / 21600) * 0.94)


def test_oee_unknown_without_ideal_cycle_time_or_production() -> None:
    p = machine_production(
        ts_ms=[0],
        states=["idle"],
        parts_total=[5],
        rejects_total=[0],
        ideal_cycle_s=None,
        start_ms=0,
        end_ms=MIN,
        max_hold_ms=MIN,
    )
    assert p.availability == 0.0 and p.performance is None and p.quality is None and p.oee is None


def test_rollup_is_time_weighted_not_a_mean_of_ratios() -> None:
    a = Production(planned_ms=100, run_ms=90, parts=90, rejects=0, ideal_ms=90)
    b = Production(planned_ms=900, run_ms=450, parts=450, rejects=45, ideal_ms=450)
    line = rollup([(("p", "f", "l"), a), (("p", "f", "l"), b)])[("p", "f", "l")]
    assert line.availability == pytest.approx(540 / 1000)  # not (0.9 + 0.5) / 2
    assert line.quality == pytest.approx(495 / 540)


def test_energy_from_counter_and_peak_demand() -> None:
    # 15-min buckets: 50 kW for 30 min then 100 kW for 30 min; counter 5000 -> 5075 kWh.
    e = meter_energy(
        bucket_ms=[0, 15 * MIN, 30 * MIN, 45 * MIN],
        mean_power_kw=[50.0, 50.0, 100.0, 100.0],
        energy_min_kwh=[5000.0, 5012.5, 5025.0, 5050.0],
        energy_max_kwh=[5012.0, 5024.5, 5049.0, 5075.0],
        bucket_s=900,
    )
    assert e.energy_kwh == pytest.approx(75.0) and e.peak_kw == 100.0


def test_energy_without_counter_integrates_power() -> None:
    nan = math.nan
    e = meter_energy(
        bucket_ms=[0, 15 * MIN],
        mean_power_kw=[40.0, 80.0],
        energy_min_kwh=[nan, nan],
        energy_max_kwh=[nan, nan],
        bucket_s=900,
    )
    assert e.energy_kwh == pytest.approx(30.0) and e.peak_kw == 80.0


def test_group_peak_is_the_coincident_peak() -> None:
    # Two meters peaking at different times: group peak 120 kW, not 100 + 100.
    assert group_peak_kw([0, 1, 0, 1], [100.0, 20.0, 20.0, 100.0]) == 120.0
    assert (
        EnergyUse(energy_kwh=1.0, peak_kw=3.0) + EnergyUse(energy_kwh=2.0, peak_kw=None)
    ).energy_kwh == 3.0
