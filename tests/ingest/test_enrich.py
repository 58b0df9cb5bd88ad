from __future__ import annotations

import random

import h3.api.basic_int as h3i
import pytest

import ingest.enrich
from contract import Cellular, Machine
from contract.readings import AnyReading
from ingest.enrich import CellLocator
from settings.ingest import GatewayPosition

TS = 1_700_000_000_000


def _probe(lat: float | None, lon: float | None) -> AnyReading:
    return Cellular(ts=TS, dev="p", operator="o", tech="LTE", lat=lat, lon=lon)


@pytest.mark.parametrize("resolution", [0, 7, 10, 15])
def test_cells_are_h3s_public_cells_for_any_position_and_resolution(resolution: int) -> None:
    """The locator calls h3's compiled function directly: the cells are the public API's."""
    rng = random.Random(resolution)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(500)]
    points += [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (20.85, 106.68)]
    locator = CellLocator(resolution)
    readings = [_probe(lat, lon) for lat, lon in points]
    expected = [h3i.latlng_to_cell(lat, lon, resolution) for lat, lon in points]
    assert locator.cells("gw", readings) == expected
    assert locator.cells("gw", readings) == expected  # from the cache
    assert [locator.cell(lat, lon) for lat, lon in points] == expected


def test_readings_without_a_position_take_their_gateways_cell_or_zero() -> None:
    locator = CellLocator(10, {"gw-1": GatewayPosition(lat=20.9, lon=106.7)})
    gateway_cell = h3i.latlng_to_cell(20.9, 106.7, 10)
    machine = Machine(ts=TS, dev="cnc", state="idle")
    mixed = [machine, _probe(20.85, 106.68), _probe(None, None), machine]
    own = h3i.latlng_to_cell(20.85, 106.68, 10)
    assert locator.cells("gw-1", mixed) == [gateway_cell, own, gateway_cell, gateway_cell]
    assert locator.cells("gw-2", mixed) == [0, own, 0, 0]
    assert locator.cells("gw-1", []) == []
    locator.set_registered({"gw-2": (21.0, 106.5)})  # the registry's positions, read later, count
    assert locator.cells("gw-2", [machine]) == [h3i.latlng_to_cell(21.0, 106.5, 10)]


def test_the_position_cache_is_bounded_and_cells_stay_right_when_it_is_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest.enrich, "_CACHE_MAX", 3)
    locator = CellLocator(9)
    points = [(20.8 + i * 0.01, 106.6 + i * 0.01) for i in range(10)]
    for lat, lon in points * 2:
        assert locator.cells("gw", [_probe(lat, lon)]) == [h3i.latlng_to_cell(lat, lon, 9)]
        assert len(locator._cache) <= 3


def test_an_impossible_position_fails_as_in_h3() -> None:
    """The contract never lets one through (constructors do not check ranges, the decoder
    does); should one come, h3's own error, not a wrong cell."""
    with pytest.raises(Exception) as direct:
        h3i.latlng_to_cell(float("nan"), 0.0, 10)
    with pytest.raises(type(direct.value)):
        CellLocator(10).cells("gw", [_probe(float("nan"), 0.0)])
