"""Drive-test surveys: what the detector sees is the noise-free field plus the stated noise."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import Scenario
from firmware_sim.survey import HARD, HARD_REFERENCE, SurveySetting, drive_test


@pytest.fixture(scope="module")
def env(scenario: Scenario) -> RadioEnvironment:
    return RadioEnvironment(scenario)


def test_hard_survey_has_the_stated_noise(scenario: Scenario, env: RadioEnvironment) -> None:
    one_vehicle = SurveySetting(name="t", vehicles=1, street_spacing_m=(300.0, 400.0))
    s = drive_test(scenario, one_vehicle, seed=5, env=env)
    assert len(s) > 1000
    assert all(abs(o) <= 3.0 for o in s.device_offsets_db.values()) and len(s.device_offsets_db) >= 6
    # no_service readings carry the reporting floor and no SINR
    assert s.no_service.any() and (s.rsrp_dbm[s.no_service] == -140.0).all()
    assert np.isnan(s.sinr_db[s.no_service]).all() and (s.rsrp_dbm[~s.no_service] >= -124.0).all()
    # Readings of one vehicle at one instant share a reported position across operators.
    first = (s.operator == s.operator[0]) & (s.tech == s.tech[0]) & (s.park == s.park[0])
    other = (s.operator != s.operator[0]) & (s.park == s.park[0])
    assert np.array_equal(s.lat[first][:50], s.lat[other][:50])
    again = drive_test(scenario, one_vehicle, seed=5, env=env)
    assert np.array_equal(s.rsrp_dbm, again.rsrp_dbm)
    assert HARD.gnss_error_m == (5.0, 10.0) and HARD.step_m == (10.0, 30.0) and HARD.device_offset_db == 3.0


def test_a_reference_vehicle_changes_only_its_own_offsets(scenario: Scenario, env: RadioEnvironment) -> None:
    two = SurveySetting(name="t", vehicles=2, street_spacing_m=(300.0, 400.0))
    with_ref = SurveySetting(name="t-ref", vehicles=2, street_spacing_m=(300.0, 400.0), reference_vehicles=1)
    plain = drive_test(scenario, two, seed=9, env=env)
    ref = drive_test(scenario, with_ref, seed=9, env=env)
    assert plain.reference_devices == ()
    assert ref.reference_devices and all("-veh0-" in d for d in ref.reference_devices)
    assert all(abs(ref.device_offsets_db[d]) <= 0.5 for d in ref.reference_devices)
    others = [d for d in ref.device_offsets_db if d not in ref.reference_devices]
    assert others and all(ref.device_offsets_db[d] == plain.device_offsets_db[d] for d in others)
    # Same streets, same fading: only the reference receivers' readings differ.
    veh1 = np.array(["-veh1-" in d for d in ref.dev.tolist()])
    assert np.array_equal(ref.lat, plain.lat)
    assert np.array_equal(ref.sinr_db[veh1], plain.sinr_db[veh1], equal_nan=True)
    assert np.array_equal(ref.rsrp_dbm[veh1], plain.rsrp_dbm[veh1])
    assert not np.array_equal(ref.rsrp_dbm[~veh1], plain.rsrp_dbm[~veh1])
    assert HARD_REFERENCE.reference_vehicles == 1 and HARD_REFERENCE.device_offset_db == HARD.device_offset_db
