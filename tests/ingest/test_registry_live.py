"""The ingester reads parks and gateway positions from the registry, and refuses unknown ones."""

from __future__ import annotations

from pathlib import Path

import h3.api.basic_int as h3i

from ingest.model import WriteBatch
from storage.places import GatewaySite, ParkRecord, Places
from tests.ingest.test_field_validation import _cell, _ingester, _msg


def test_positions_and_known_parks_follow_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    ing = _ingester(tmp_path, registry_path=str(path), refuse_unknown="gateways")
    ing.refresh_registry()  # no file yet: nothing known, everything refused
    first = WriteBatch()
    assert ing.handle(_msg(_cell()), first) == 0
    assert first.dead_letters[0].reason.startswith("unknown_park: park 'hp'")

    places = Places(path)
    places.put_park(ParkRecord(id="hp"))
    ing.refresh_registry()
    second = WriteBatch()
    assert ing.handle(_msg(_cell(), seq=2), second) == 0
    assert second.dead_letters[0].reason.startswith("unknown_gateway: gateway 'gw-1'")

    places.put_gateway(GatewaySite(gw="gw-1", park="hp", lat=20.85, lon=106.68))
    places.close()
    ing.refresh_registry()
    third = WriteBatch()
    assert ing.handle(_msg(_cell(), seq=3), third) == 1
    assert third.parts[0].h3 == [h3i.latlng_to_cell(20.85, 106.68, 10)]  # the gateway's fixed position
    assert ing.metrics.dead_letter_reasons["unknown_park"] == 1


def test_without_refusal_unknown_parks_are_accepted(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, registry_path=str(tmp_path / "none.sqlite"))
    ing.refresh_registry()
    assert ing.handle(_msg(_cell()), WriteBatch()) == 1
