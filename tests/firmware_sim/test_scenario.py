"""Scenario files: the default validates, and every error names the bad key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from contract.ids import is_valid_id
from firmware_sim.errors import ScenarioError
from firmware_sim.scenario import Scenario, default_scenario_path, load_scenario, scenario_from_dict
from settings.errors import ConfigError


def _default_data() -> dict[str, Any]:
    return tomllib.loads(default_scenario_path().read_text(encoding="utf-8"))


def test_default_scenario_has_what_the_platform_needs(scenario: Scenario) -> None:
    assert len(scenario.parks) >= 3
    assert len(scenario.operators) == 3
    gateways = [gw for _, gw in scenario.gateways()]
    assert any(gw.mobile for gw in gateways) and any(not gw.mobile for gw in gateways)
    assert all(is_valid_id(p.id) for p in scenario.parks)
    assert all(is_valid_id(gw.id) for gw in gateways)
    techs = {b[0] for op in scenario.operators for s in op.sites for b in s.carriers}
    assert techs == {"B", "n"}  # LTE and NR
    assert scenario.underserved


def test_load_by_name_and_by_path(tmp_path: Path) -> None:
    copy = tmp_path / "s.toml"
    copy.write_text(default_scenario_path().read_text(encoding="utf-8"), encoding="utf-8")
    assert load_scenario(copy) == load_scenario("default")


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["parks"][0]["gateways"][0].update(lat=123.0), "parks[0].gateways[0].lat"),
        (lambda d: d["parks"][1].update(id="bad id/with slash"), "parks[1].id"),
        (
            lambda d: d["operators"][2]["sites"][0].update(carriers=["B99"]),
            "operators[2].sites[0].carriers[0]",
        ),
        (
            lambda d: d["parks"][0]["gateways"][0]["modems"][0].update(operator="nobody"),
            "parks[0].gateways[0].modems[0].operator",
        ),
        (lambda d: d["radio"].update(shadowing_sigma_db=-1.0), "radio.shadowing_sigma_db"),
        (lambda d: d["sim"].update(speeed=2.0), "sim"),
        (
            lambda d: d["parks"][0]["gateways"][0].update(probe_targets=["nope"]),
            "parks[0].gateways[0].probe_targets[0]",
        ),
        (
            lambda d: d["parks"][0]["gateways"][0]["meters"][0].update(machines=["ghost"]),
            "parks[0].gateways[0].meters[0].machines[0]",
        ),
    ],
)
def test_errors_name_the_bad_key(mutate: Any, key: str) -> None:
    data = _default_data()
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, where="s.toml")
    assert key in str(info.value)
    assert str(info.value).startswith("s.toml")
    assert isinstance(info.value, ConfigError)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)
