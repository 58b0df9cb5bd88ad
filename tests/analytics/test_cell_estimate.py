"""The area-weighted test of a cell's median: weights, weighted median and rank test on hand-computed fixtures."""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest

from analytics.cell_estimate import (
    area_points,
    area_test,
    area_weights,
    weighted_median,
    weighted_signed_rank_confidence,
)
from analytics.deadzones import DetectOptions, assess_cells, median_below_confidence
from storage.query import CellSamples

CELL = h3.latlng_to_cell(20.85, 106.76, 10)


def test_a_street_on_one_side_does_not_outvote_the_rest_of_the_cell() -> None:
    # Known field: -120 dBm west of x = 20 m, -110 dBm east of it. Five area points on a line.
    targets = np.array([[-50.0, 0.0], [-30.0, 0.0], [-10.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    true_area_median = float(np.median(np.where(targets[:, 0] < 20.0, -120.0, -110.0)))
    assert true_area_median == -120.0  # a hole: four of five points lie in it
    # A short street in the hole (3 readings at x = -40) and a long one outside it (7 at x = 40).
    west = np.array([[-40.0, y] for y in (-20.0, 0.0, 20.0)])
    east = np.array([[40.0, y] for y in (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0)])
    xy = np.vstack([west, east])
    level = np.r_[np.full(3, -120.0), np.full(7, -110.0)]
    assert np.median(level) == -110.0  # the readings' median sees the long street: covered
    # Nearest witness only: (-50,0), (-30,0), (-10,0) -> west (-40,0); (10,0), (30,0) -> east (40,0).
    weights, represented = area_weights(xy, targets, nearest=1, radius_m=60.0)
    assert weights.tolist() == [0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]
    assert represented == 1.0
    result = area_test(xy, level, targets, -115.0, nearest=1, radius_m=60.0)
    assert result.median_dbm == true_area_median
    # Rank test by hand: diffs -5 (weight 3) and +5 (weight 2) tie at rank 1.5; weighted ranks 4.5
    # and 3; T- = 4.5, mean 3.75, variance (4.5² + 3²) / 4, continuity 0.5 · (9 + 4) / 5.
    z = (4.5 - 3.75 - 0.5 * 13 / 5) / math.sqrt((4.5**2 + 3.0**2) / 4)
    assert result.below_confidence == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2.0)), abs=1e-12)
    assert result.below_confidence == pytest.approx(0.4194, abs=1e-4)
    assert not result.decisive  # two witnesses are too few to decide anything


def test_equal_weights_give_the_readings_only_signed_rank_test() -> None:
    diff = np.random.default_rng(5).normal(-1.0, 4.0, 40)
    assert weighted_signed_rank_confidence(diff, np.ones(40)) == pytest.approx(
        median_below_confidence(diff), rel=1e-12
    )
    # Scaling every weight changes nothing.
    assert weighted_signed_rank_confidence(diff, np.full(40, 3.7)) == pytest.approx(
        median_below_confidence(diff), rel=1e-12
    )


def test_an_area_point_beyond_the_witness_radius_is_not_represented() -> None:
    weights, represented = area_weights(
        np.array([[0.0, 0.0]]), np.array([[0.0, 10.0], [0.0, 100.0]]), radius_m=50.0
    )
    assert weights.tolist() == [1.0] and represented == 0.5


def test_weighted_median() -> None:
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 5.0])) == 2.0
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.array([5.0, 1.0, 1.0])) == 3.0


def test_area_points_cover_the_cell() -> None:
    pts = area_points(h3.str_to_int(CELL))
    assert len(pts) == 49
    inside = [h3.latlng_to_cell(lat, lon, 10) == CELL for lon, lat in pts]
    # H3 children are not exactly nested in their parent: a few of the outer ones lie across the edge.
    assert sum(inside) >= 40
    assert {h3.latlng_to_cell(lat, lon, 10) for lon, lat in pts} <= set(h3.grid_disk(CELL, 1))


def _cell_readings(xy_m: list[tuple[float, float]], rsrp: list[float]) -> CellSamples:
    lat0, lon0 = h3.cell_to_latlng(CELL)
    n = len(rsrp)
    return CellSamples(
        park=np.array(["p"] * n, dtype=object),
        h3=np.full(n, h3.str_to_int(CELL), dtype=np.uint64),
        operator=np.array(["Op"] * n, dtype=object),
        tech=np.array(["LTE"] * n, dtype=object),
        dev=np.array(["d1"] * n, dtype=object),
        ts_ms=np.arange(n, dtype=np.int64) * 1000,
        lat=np.array([lat0 + y / 110_574.0 for _, y in xy_m]),
        lon=np.array([lon0 + x / (111_320.0 * math.cos(math.radians(lat0))) for x, _ in xy_m]),
        rsrp_dbm=np.array(rsrp, dtype=np.float64),
        sinr_db=np.full(n, 10.0),
    )


def test_an_undecided_cell_is_decided_by_the_area_it_represents() -> None:
    # West of x = 5 m the cell lies at -121 dBm (12 readings on a street at x = -30 m); east of it
    # at -113 dBm (24 readings on a street at x = 40 m). Most of the area is in the hole.
    west = [(-30.0, -30.0 + 60.0 * i / 11) for i in range(12)]
    east = [(40.0, -20.0 + 40.0 * i / 23) for i in range(24)]
    samples = _cell_readings(west + east, [-121.0] * 12 + [-113.0] * 24)
    lat0, lon0 = h3.cell_to_latlng(CELL)
    area_x = [
        (lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)) for lon, _ in area_points(h3.str_to_int(CELL))
    ]
    assert np.median([-121.0 if x < 5.0 else -113.0 for x in area_x]) <= -115.0  # the truth: a hole
    plain = assess_cells(samples, options=DetectOptions(calibrate=False))
    assert plain.tested[0] == 36  # every reading certainly inside
    assert plain.state[0] == "uncertain" and 0.5 < plain.confidence[0] < 0.9
    area = assess_cells(samples, options=DetectOptions(calibrate=False, area_weighted=True))
    assert area.state[0] == "dead" and area.confidence[0] >= 0.9
    # The other columns are the readings-only test's.
    assert area.rsrp_median_dbm[0] == plain.rsrp_median_dbm[0] == -113.0


def test_a_decided_cell_is_left_to_the_readings_only_test() -> None:
    samples = _cell_readings([(0.0, 0.0)] * 12, [-125.0] * 12)
    a = assess_cells(samples, options=DetectOptions(calibrate=False, area_weighted=True))
    b = assess_cells(samples, options=DetectOptions(calibrate=False))
    assert a.state[0] == b.state[0] == "dead" and a.confidence[0] == b.confidence[0]


def test_the_area_test_does_not_decide_from_few_readings_or_one_corner() -> None:
    area = DetectOptions(calibrate=False, area_weighted=True)
    few = assess_cells(_cell_readings([(0.0, 0.0)] * 3, [-120.0] * 3), options=area)
    assert few.state[0] == "uncertain"  # 3 readings: the exact sign test's 87.5 % stands
    # Twenty readings, all within the GNSS margin of one corner: the readings-only test uses none,
    # and they witness too little of the cell for the area test.
    lat0, lon0 = h3.cell_to_latlng(CELL)
    corner_lat, corner_lon = h3.cell_to_boundary(CELL)[0]
    x = (corner_lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)) * 0.95
    y = (corner_lat - lat0) * 110_574.0 * 0.95
    corner = assess_cells(_cell_readings([(x, y)] * 20, [-130.0] * 20), options=area)
    assert corner.tested[0] == 0 and corner.state[0] == "uncertain"
