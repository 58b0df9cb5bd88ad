"""Drive-test surveys: what the detector sees is the noise-free field plus the stated noise."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import Scenario
from firmware_sim.survey import HARD, SurveySetting, drive_test


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
