"""The scenario's cells as an OpenCelliD CSV: every cell, at its site, with the modems' identities."""

from __future__ import annotations

from firmware_sim.opencellid import opencellid_csv, operator_names
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import load_scenario
from storage.cell_sites import operator_of, parse_opencellid_text


def test_every_cell_imports_cleanly_at_its_site_with_its_operator() -> None:
    scenario = load_scenario()
    cells = RadioEnvironment(scenario).cells()
    parsed = parse_opencellid_text(opencellid_csv(scenario, cells, updated_s=1_700_000_000))
    # The simulator gives the carriers of one sector one cell identity: one site row each.
    distinct = {(c.tech, c.mcc, c.mnc, c.tac, c.cell_id) for c in cells}
    assert parsed.errors == () and len(parsed.sites) == len(distinct) > 10
    names = operator_names(scenario)
    by_id = {(s.radio, s.cell): s for s in parsed.sites}
    sites = {(op.name, site.id): site for op in scenario.operators for site in op.sites}
    for c in cells:
        got = by_id[(c.tech, c.cell_id)]
        name = operator_of(got, names)
        assert (got.unit, got.area, got.mcc, got.net) == (c.pci, c.tac, c.mcc, c.mnc)
        assert name is not None
        site = sites[(name, c.site)]
        assert (got.lat, got.lon) == (round(site.lat, 6), round(site.lon, 6))
