"""Fixtures of the simulator tests: the default scenario, loaded once."""

from __future__ import annotations

import pytest

from firmware_sim.scenario import Scenario, load_scenario


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario()
