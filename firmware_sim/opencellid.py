"""The scenario's cells as an OpenCelliD CSV, so a demo or test can import the sites it drives past.

One row per cell (sector and carrier) of :class:`firmware_sim.radio.environment.RadioEnvironment`,
at its site's position, with the identities the simulated modems report: ``area`` = TAC,
``cell`` = cell identity, ``unit`` = PCI. The carriers of one sector share their identity in the
simulator, so they become one row (OpenCelliD's key). ``range`` and ``samples`` are 0: OpenCelliD estimates
them from crowd measurements, which a scenario does not have.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware_sim.radio.environment import CellInfo
from firmware_sim.scenario import Scenario

HEADER = "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal"


def opencellid_csv(scenario: Scenario, cells: Sequence[CellInfo], *, updated_s: int) -> str:
    """The CSV text (with its header line) of ``cells``; ``updated_s`` stamps created and updated."""
    where = {(op.id, site.id): (site.lon, site.lat) for op in scenario.operators for site in op.sites}
    lines = [HEADER]
    for c in cells:
        lon, lat = where[(c.operator, c.site)]
        lines.append(
            f"{c.tech},{c.mcc},{c.mnc},{c.tac},{c.cell_id},{c.pci},{lon:.6f},{lat:.6f},0,0,0,"
            f"{updated_s},{updated_s},0"
        )
    return "\n".join(lines) + "\n"


def operator_names(scenario: Scenario) -> dict[str, str]:
    """``"MCC-MNC"`` → the operator name the simulated modems report."""
    return {f"{op.mcc:03d}-{op.mnc:02d}": op.name for op in scenario.operators}
