"""Coverage grid classes, dead-zone components, survey gaps and summaries on hand-built cells."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from analytics.coverage import (
    cell_area_m2,
    cell_classes,
    cell_features,
    park_cells,
    summarize,
    summary_change,
    survey_gaps,
)
from analytics.deadzones import area_scores, components
from analytics.signal import CLASS_INDEX
from storage.query import CellStats

ORIGIN = h3.latlng_to_cell(20.80, 106.75, 10)


def cell(i: int, j: int) -> int:
    """A cell at local IJ offset (i, j) from ORIGIN (neighbours differ by one step)."""
    oi, oj = h3.cell_to_local_ij(ORIGIN, ORIGIN)
    return int(h3.str_to_int(h3.local_ij_to_cell(ORIGIN, oi + i, oj + j)))


def stats(rows: list[tuple[int, str, str, int, float, float]]) -> CellStats:
    """(cell, operator, tech, samples, rsrp median, sinr median) rows of one park."""
    out: CellStats = CellStats.from_rows(
        [
            {
                "park": "p1",
                "h3": c,
                "operator": op,
                "tech": tech,
                "samples": n,
                "devices": 1,
                "rsrp_p10_dbm": rsrp - 3 if n >= 5 else None,
                "rsrp_median_dbm": rsrp,
                "rsrq_median_db": -10.0,
                "sinr_p10_db": sinr - 2,
                "sinr_median_db": sinr,
                "first_ms": 1000 * k,
                "last_ms": 1000 * k + 500,
            }
            for k, (c, op, tech, n, rsrp, sinr) in enumerate(rows)
        ]
    )
    return out


@pytest.mark.parametrize(
    ("rsrp", "sinr", "tech", "expected"),
    [
        (-75.0, 10.0, "LTE", "excellent"),
        (-105.0, 10.0, "NR", "poor"),
        (-85.0, -1.0, "LTE", "good"),  # a coverage class: bad SINR is an interference zone, not "none"
        (-85.0, 10.0, "WIMAX", None),
    ],
)
def test_cell_class_from_medians(rsrp: float, sinr: float, tech: str, expected: str | None) -> None:
    got = int(cell_classes(stats([(cell(0, 0), "A", tech, 10, rsrp, sinr)]))[0])
    assert got == (-1 if expected is None else CLASS_INDEX[expected])


def test_components_by_shared_edges() -> None:
    line = {cell(0, 0), cell(1, 0), cell(2, 0)}
    lone = {cell(5, 5)}
    comps = sorted(components(line | lone), key=len)
    assert [len(c) for c in comps] == [1, 3]
    assert set(comps[1]) == line


def test_features_flag_insufficient_cells() -> None:
    s = stats([(cell(0, 0), "A", "NR", 3, -90.0, 5.0), (cell(1, 0), "A", "NR", 9, -90.0, 5.0)])
    feats = cell_features(s, cell_classes(s), min_samples=5)
    assert [f["properties"]["insufficient"] for f in feats] == [True, False]
    assert feats[0]["properties"]["rsrp_p10_dbm"] is None and feats[1]["properties"]["class"] == "good"


def test_park_cells_and_survey_gaps() -> None:
    ring = [[106.745, 20.795], [106.755, 20.795], [106.755, 20.805], [106.745, 20.805], [106.745, 20.795]]
    inside = park_cells(ring, 10)
    area = sum(cell_area_m2(c) for c in inside)
    assert 0.8e6 < area < 1.4e6  # ~1.04 km x 1.11 km
    measured = set(list(inside)[: len(inside) // 2]) | {cell(40, 40)}
    gaps = survey_gaps(inside, measured)
    assert len(gaps) == len(inside) - len(inside) // 2 and not set(gaps) & measured


def test_summary_shares_and_change() -> None:
    cells = np.array([cell(0, 0), cell(1, 0), cell(2, 0), cell(3, 0)], dtype=np.uint64)
    classes = np.array([0, 0, 3, 4], dtype=np.int8)
    cur = summarize(
        park="p1",
        operator="A",
        tech="LTE",
        cells=cells,
        classes=classes,
        sufficient=np.array([True, True, True, False]),
        dead_zone_areas_m2=[100.0],
        park_cell_set=frozenset(cells[:2].tolist()),
    )
    assert cur.measured_cells == 3
    assert cur.area_share_by_class["none"] == pytest.approx(2 / 3, rel=1e-3)
    assert cur.park_area_measured_share == 1.0
    prev = summarize(
        park="p1",
        operator="A",
        tech="LTE",
        cells=cells[:1],
        classes=classes[:1],
        sufficient=np.array([True]),
        dead_zone_areas_m2=[50.0, 50.0],
        park_cell_set=None,
    )
    change = summary_change(cur, prev)
    assert change is not None
    assert change["dead_zones"] == -1 and change["dead_zone_area_m2"] == 0.0
    assert change["area_share_by_class"]["none"] == pytest.approx(2 / 3 - 1, rel=1e-3)
    assert summary_change(cur, None) is None


@pytest.mark.parametrize(
    ("detected", "truth", "surveyed", "expected"),
    [
        ({1, 2}, {1, 2}, None, (1.0, 1.0, 1.0)),
        ({1, 2}, {2, 3}, None, (0.5, 0.5, 1 / 3)),
        ({1}, {1, 2}, {1}, (1.0, 1.0, 1.0)),
        (set(), set(), None, (1.0, 1.0, 1.0)),
    ],
)
def test_area_scores(
    detected: set[int], truth: set[int], surveyed: set[int] | None, expected: tuple[float, ...]
) -> None:
    ids = {i: cell(i, 0) for i in range(5)}
    s = area_scores(
        {ids[i] for i in detected},
        {ids[i] for i in truth},
        surveyed=None if surveyed is None else {ids[i] for i in surveyed},
    )
    assert (s["precision"], s["recall"], s["iou"]) == pytest.approx(expected, rel=1e-3)
