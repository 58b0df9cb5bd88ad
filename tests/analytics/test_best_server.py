"""Best server and pilot pollution on hand-built readings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from analytics.best_server import best_servers
from storage.query import CellSamples


def samples(rows: list[tuple[Any, ...]]) -> CellSamples:
    """(h3, operator, rsrp, cell_id, pci) rows of park p1, LTE."""
    n = len(rows)
    return CellSamples(
        park=np.array(["p1"] * n, dtype=object),
        h3=np.array([r[0] for r in rows], dtype=np.uint64),
        operator=np.array([r[1] for r in rows], dtype=object),
        tech=np.array(["LTE"] * n, dtype=object),
        dev=np.array(["d"] * n, dtype=object),
        ts_ms=np.zeros(n, dtype=np.int64),
        lat=np.full(n, 20.8),
        lon=np.full(n, 106.7),
        rsrp_dbm=np.array([r[2] for r in rows]),
        sinr_db=np.full(n, math.nan),
        cell_id=np.array([r[3] for r in rows]),
        pci=np.array([r[4] for r in rows]),
    )


NAN = math.nan


def test_three_servers_within_5_db_are_pilot_pollution_two_are_not() -> None:
    rows = [
        # cell 1: servers 10 (-80, -82 → median -81), 11 (-84, -86 → -85), 12 (-85.5, -86.5 → -86)
        (1, "A", -80.0, 10, 1), (1, "A", -82.0, 10, 1),
        (1, "A", -84.0, 11, 2), (1, "A", -86.0, 11, 2),
        (1, "A", -85.5, 12, 3), (1, "A", -86.5, 12, 3),
        # cell 2: the third server is 6.5 dB below the best
        (2, "A", -80.0, 10, 1), (2, "A", -80.0, 10, 1),
        (2, "A", -84.0, 11, 2), (2, "A", -84.0, 11, 2),
        (2, "A", -86.5, 12, 3), (2, "A", -86.5, 12, 3),
    ]  # fmt: skip
    one, two = best_servers(samples(rows))
    assert (one.h3, one.best.server, one.best.rsrp_median_dbm) == (1, "10", -81.0)
    assert [s.server for s in one.within] == ["10", "11", "12"] and one.pilot_pollution
    assert [s.server for s in two.within] == ["10", "11"] and not two.pilot_pollution
    assert [s.server for s in two.servers] == ["10", "11", "12"]


def test_pci_only_readings_no_service_and_single_readings() -> None:
    rows = [
        (1, "A", -90.0, NAN, 7), (1, "A", -91.0, NAN, 7),
        (1, "A", -140.0, NAN, NAN), (1, "A", -140.0, NAN, NAN),
        (1, "A", -70.0, 99, 1),  # one reading: not enough to name a server
        (1, "B", -95.0, NAN, NAN), (1, "B", -96.0, NAN, NAN),  # no server reported at all
    ]  # fmt: skip
    (only,) = best_servers(samples(rows))
    assert (only.operator, only.best.server, only.best.samples) == ("A", "pci:7", 2)
    assert best_servers(samples(rows), min_samples=1)[0].best.server == "99"


def test_rule_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="pollution_servers"):
        best_servers(samples([]), pollution_servers=1)
