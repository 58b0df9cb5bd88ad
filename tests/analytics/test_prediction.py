"""Predicted coverage on hand-built fields: a planar gradient with a known hole, and a log-distance field."""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest

from analytics.calibration import DeviceOffset
from analytics.coverage import cell_center
from analytics.prediction import (
    CLASSES,
    CellObservations,
    PredictOptions,
    calibration_variance,
    classify,
    fit_trend,
    observations,
    predict_layer,
)
from storage.query import CellSamples

LAT0, LON0 = 20.80, 106.75
HOLE_M = (300.0, 200.0)
THRESHOLD = -115.0


def _xy(cell: int) -> tuple[float, float]:
    lon, lat = cell_center(cell)
    return (lon - LON0) * 111_320.0 * math.cos(math.radians(LAT0)), (lat - LAT0) * 110_574.0


def field_dbm(cell: int) -> float:
    """-90 dBm at the origin, 1 dB per 100 m eastwards; a hole of -128 dBm within 170 m of HOLE_M."""
    x, y = _xy(cell)
    if math.hypot(x - HOLE_M[0], y - HOLE_M[1]) < 170.0:
        return -128.0
    return -90.0 + x / 100.0


def _cells() -> list[int]:
    centre = h3.latlng_to_cell(LAT0, LON0, 10)
    return sorted(h3.str_to_int(c) for c in h3.grid_disk(centre, 9))


def _observed(cells: list[int], noise_db: float, seed: int) -> CellObservations:
    rng = np.random.default_rng(seed)
    truth = np.array([field_dbm(c) for c in cells])
    var = np.full(len(cells), noise_db**2)
    return CellObservations(
        cells=np.array(cells, dtype=np.uint64),
        rsrp_median_dbm=truth + rng.normal(0.0, noise_db, len(cells)),
        var_db2=var,
        samples=np.full(len(cells), 10, dtype=np.int64),
    )


def test_gradient_and_hole_are_predicted_with_honest_intervals() -> None:
    cells = _cells()
    hole_centre = min(cells, key=lambda c: math.hypot(_xy(c)[0] - HOLE_M[0], _xy(c)[1] - HOLE_M[1]))
    west = [c for c in cells if -420 < _xy(c)[0] < -250 and abs(_xy(c)[1]) < 200]  # an unmeasured block
    left_out = {hole_centre, *west}
    measured = [c for c in cells if c not in left_out]
    layer = predict_layer(
        _observed(measured, 1.0, 1),
        park="p",
        operator="Alpha",
        tech="LTE",
        threshold_dbm=THRESHOLD,
        park_cells=frozenset(cells),
        options=PredictOptions(margin_rings=1),
    )
    at = {int(c): i for i, c in enumerate(layer.cells.tolist())}
    # The hole's centre cell, surrounded by measured hole cells, is predicted dead.
    i = at[hole_centre]
    assert not layer.measured[i]
    assert layer.predicted_dbm[i] < -122.0 and layer.cls[i] == "predicted_dead"
    # The unmeasured block on the gradient: within 3 dB, its truth inside the interval, and clearly ok.
    errs = np.array([layer.predicted_dbm[at[c]] - field_dbm(c) for c in west])
    assert len(west) >= 4 and np.abs(errs).max() < 3.0
    assert all(layer.lower_dbm[at[c]] <= field_dbm(c) <= layer.upper_dbm[at[c]] for c in west)
    assert {layer.cls[at[c]] for c in west} == {"predicted_ok"}
    # The predicted layer holds exactly the unmeasured cells; the margin ring is predicted too.
    feats = layer.features()
    assert {f["properties"]["cell"] for f in feats} == {
        h3.int_to_str(int(c)) for c in layer.cells[~layer.measured].tolist()
    }
    assert not {h3.str_to_int(f["properties"]["cell"]) for f in feats} & set(measured)
    assert any(not f["properties"]["in_park"] for f in feats)
    for f in feats:
        pr = f["properties"]
        assert pr["class"] in CLASSES and pr["lower_dbm"] <= pr["predicted_rsrp_dbm"] <= pr["upper_dbm"]
    v = layer.validation.as_dict()
    assert v["method"].startswith("spatial block cross-validation") and v["folds"] == 5
    assert v["cells"] == len(measured)
    assert 0.75 <= v["interval_coverage"] <= 1.0
    assert abs(v["bias_db"]) < 1.5


def test_log_distance_trend_is_recovered_from_sites() -> None:
    sites_xy = np.array([[0.0, 0.0], [3000.0, 0.0]])
    rng = np.random.default_rng(2)
    xy = rng.uniform(-500, 3500, (300, 2))
    d = np.sqrt(((xy[:, None, :] - sites_xy[None]) ** 2).sum(axis=2)).min(axis=1)
    y = 20.0 - 40.0 * np.log10(d) + rng.normal(0, 1.0, 300)
    trend = fit_trend(xy, y, sites_xy=sites_xy)
    assert trend.kind == "log_distance"
    assert trend.coef[0] == pytest.approx(20.0, abs=2.0) and trend.coef[1] == pytest.approx(-40.0, abs=1.0)
    assert fit_trend(xy, y, sites_xy=None).kind == "plane"
    assert fit_trend(xy[:5], y[:5], sites_xy=sites_xy).kind == "constant"


def test_classes_follow_the_interval() -> None:
    lower = np.array([-130.0, -110.0, -120.0, -115.0])
    upper = np.array([-115.0, -100.0, -110.0, -105.0])
    assert classify(lower, upper, THRESHOLD).tolist() == [
        "predicted_dead",
        "predicted_ok",
        "predicted_uncertain",
        "predicted_uncertain",
    ]


def test_observations_calibrate_and_count_no_service() -> None:
    cell = h3.str_to_int(h3.latlng_to_cell(LAT0, LON0, 10))
    rsrp = np.array([-100.0, -102.0, -98.0, -140.0, -140.0])
    n = len(rsrp)
    samples = CellSamples(
        park=np.full(n, "p", dtype=object),
        h3=np.full(n, cell, dtype=np.uint64),
        operator=np.full(n, "Alpha", dtype=object),
        tech=np.full(n, "LTE", dtype=object),
        dev=np.array(["a", "a", "a", "b", "b"], dtype=object),
        ts_ms=np.arange(n, dtype=np.int64),
        lat=np.full(n, LAT0),
        lon=np.full(n, LON0),
        rsrp_dbm=rsrp,
        sinr_db=np.full(n, 5.0),
    )
    obs = observations(samples)[("p", "Alpha", "LTE")]
    assert obs.cells.tolist() == [cell] and obs.samples.tolist() == [5]
    assert obs.rsrp_median_dbm[0] == -102.0  # the two no-service readings count at -130, below the rest
    assert obs.var_db2[0] > 0


def test_too_few_cells_is_an_error_that_says_so() -> None:
    with pytest.raises(ValueError, match="at least 3 measured cells"):
        predict_layer(
            _observed(_cells()[:2], 1.0, 1), park="p", operator="A", tech="LTE", threshold_dbm=THRESHOLD
        )


def test_local_neighbourhoods_bound_the_solve_and_still_predict() -> None:
    cells = _cells()
    west = [c for c in cells if -420 < _xy(c)[0] < -250 and abs(_xy(c)[1]) < 200]
    measured = [c for c in cells if c not in set(west)]
    assert len(measured) > 200
    layer = predict_layer(
        _observed(measured, 1.0, 4),
        park="p",
        operator="Alpha",
        tech="LTE",
        threshold_dbm=THRESHOLD,
        park_cells=frozenset(cells),
        options=PredictOptions(margin_rings=0, max_local_cells=60, tile_m=200.0),
    )
    at = {int(c): i for i, c in enumerate(layer.cells.tolist())}
    errs = np.array([layer.predicted_dbm[at[c]] - field_dbm(c) for c in west])
    assert np.abs(errs).max() < 4.0
    v = layer.validation
    # Blocks that hold the whole hole cannot be predicted from outside it: both methods miss it alike.
    assert v.rmse_db is not None and v.idw_rmse_db is not None and v.rmse_db < v.idw_rmse_db + 1.0


@pytest.mark.parametrize(
    ("offsets_db", "expected_db2"),
    [
        ((), 0.0),
        ((2.5,), 0.0),  # one device: nothing to spread, its offset is the fleet's
        ((1.0, -1.0), 1.0),  # s² = 2 over 2 devices
        ((1.5, 0.0, -1.5), 0.75),  # s² = 2.25 over 3 devices
    ],
)
def test_calibration_variance_is_the_spread_of_the_offsets_over_their_number(
    offsets_db: tuple[float, ...], expected_db2: float
) -> None:
    assert calibration_variance(offsets_db) == pytest.approx(expected_db2)


def test_observations_carry_the_calibration_variance_of_the_layers_devices() -> None:
    cell = h3.str_to_int(h3.latlng_to_cell(LAT0, LON0, 10))
    n = 6
    samples = CellSamples(
        park=np.full(n, "p", dtype=object),
        h3=np.full(n, cell, dtype=np.uint64),
        operator=np.full(n, "Alpha", dtype=object),
        tech=np.array(["LTE"] * 4 + ["NR"] * 2, dtype=object),
        dev=np.array(["a", "a", "b", "b", "c", "c"], dtype=object),
        ts_ms=np.arange(n, dtype=np.int64),
        lat=np.full(n, LAT0),
        lon=np.full(n, LON0),
        rsrp_dbm=np.array([-99.0, -101.0, -101.0, -103.0, -95.0, -96.0]),
        sinr_db=np.full(n, 5.0),
    )
    offsets = [
        DeviceOffset(operator="Alpha", tech="LTE", dev="a", offset_db=1.0, shared_cells=1),
        DeviceOffset(operator="Alpha", tech="LTE", dev="b", offset_db=-1.0, shared_cells=1),
        DeviceOffset(operator="Beta", tech="LTE", dev="z", offset_db=9.0, shared_cells=1),
    ]
    obs = observations(samples, offsets=offsets)
    lte, nr = obs[("p", "Alpha", "LTE")], obs[("p", "Alpha", "NR")]
    assert lte.rsrp_median_dbm[0] == -101.0  # a reads 1 dB high, b 1 dB low: both say -101 once calibrated
    assert lte.calibration_var_db2 == pytest.approx(1.0)  # Beta's device is not in the layer
    assert nr.calibration_var_db2 == 0.0  # one device, no offset


def _gradient_layer(
    var_db2: float, calibration_var_db2: float = 0.0
) -> tuple[list[int], dict[int, float], float]:
    """The unmeasured block of a gradient field with a wave, its cells' std and the layer's mean std."""
    cells = _cells()
    west = {c for c in cells if -420 < _xy(c)[0] < -250 and abs(_xy(c)[1]) < 200}
    measured = [c for c in cells if c not in west]
    truth = np.array([-90.0 + _xy(c)[0] / 100.0 + 3.0 * math.sin(_xy(c)[1] / 250.0) for c in measured])
    obs = CellObservations(
        cells=np.array(measured, dtype=np.uint64),
        rsrp_median_dbm=truth + np.random.default_rng(4).normal(0.0, math.sqrt(var_db2), len(measured)),
        var_db2=np.full(len(measured), var_db2),
        samples=np.full(len(measured), 10, dtype=np.int64),
        calibration_var_db2=calibration_var_db2,
    )
    layer = predict_layer(
        obs,
        park="p",
        operator="Alpha",
        tech="LTE",
        threshold_dbm=THRESHOLD,
        park_cells=frozenset(cells),
        options=PredictOptions(margin_rings=0),
        validate=False,
    )
    at = {int(c): i for i, c in enumerate(layer.cells.tolist())}
    std = {c: float(layer.std_db[at[c]]) for c in west}
    return sorted(west), std, float(layer.std_db[~layer.measured].mean())


def test_interval_widens_with_fewer_samples_and_with_the_calibration_variance() -> None:
    west, std_many, _ = _gradient_layer(0.05)  # medians of many readings: variance 0.05 dB²
    _, std_few, _ = _gradient_layer(2.0)  # medians of a few noisy readings
    _, std_cal, _ = _gradient_layer(0.05, calibration_var_db2=4.0)
    assert len(west) >= 4
    assert all(std_few[c] > std_many[c] for c in west)
    # The calibration variance adds to every unmeasured cell's variance, whatever the field says.
    for c in west:
        assert std_cal[c] ** 2 == pytest.approx(std_many[c] ** 2 + 4.0, rel=0.05)


def _readings_at(points: list[tuple[float, float, float]]) -> CellSamples:
    """One reading per (east_m, north_m, rsrp_dbm) from the origin, all binned at resolution 10."""
    lat = np.array([LAT0 + n / 110_574.0 for _, n, _ in points])
    lon = np.array([LON0 + e / (111_320.0 * math.cos(math.radians(LAT0))) for e, _, _ in points])
    n = len(points)
    return CellSamples(
        park=np.full(n, "p", dtype=object),
        h3=np.array(
            [h3.str_to_int(h3.latlng_to_cell(a, b, 10)) for a, b in zip(lat, lon, strict=True)],
            dtype=np.uint64,
        ),
        operator=np.full(n, "Alpha", dtype=object),
        tech=np.full(n, "LTE", dtype=object),
        dev=np.full(n, "a", dtype=object),
        ts_ms=np.arange(n, dtype=np.int64),
        lat=lat,
        lon=lon,
        rsrp_dbm=np.array([r for _, _, r in points]),
        sinr_db=np.full(n, 5.0),
    )


def test_observations_split_a_cell_into_sub_cell_medians_where_the_readings_were() -> None:
    centre = h3.latlng_to_cell(LAT0, LON0, 10)
    east_m, north_m = _xy(h3.str_to_int(centre))
    west_spot = [(east_m - 30.0 + i, north_m, r) for i, r in enumerate([-100.0, -102.0, -104.0])]
    east_spot = [(east_m + 30.0 + i, north_m, r) for i, r in enumerate([-90.0, -92.0])]
    obs = observations(_readings_at(west_spot + east_spot))[("p", "Alpha", "LTE")]
    assert obs.cells.tolist() == [h3.str_to_int(centre)] and obs.rsrp_median_dbm.tolist() == [-100.0]
    pts = obs.points
    assert pts is not None and len(pts) == 2 and pts.cell.tolist() == [0, 0]
    by_median = dict(zip(pts.rsrp_median_dbm.tolist(), pts.lon.tolist(), strict=True))
    assert set(by_median) == {-102.0, -91.0}
    assert by_median[-102.0] < by_median[-91.0]  # the weak spot is the western one
    # The median of 2 readings is less certain than the median of 3 with the same spread.
    var = dict(zip(pts.rsrp_median_dbm.tolist(), pts.var_db2.tolist(), strict=True))
    assert var[-91.0] > var[-102.0]
    assert (
        observations(_readings_at(west_spot + east_spot), point_m=None)[("p", "Alpha", "LTE")].points is None
    )


def test_a_street_off_the_centre_of_cells_is_placed_where_it_was_driven() -> None:
    """A north-south gradient of 2 dB per 10 m, driven along one street: the sub-cell medians at the
    street's position fit it, so an unmeasured cell north of the street is predicted from the street's
    real distance, not from the measured cells' centres."""
    rng = np.random.default_rng(5)
    street = [
        (e, n, -100.0 + 0.2 * n + rng.normal(0.0, 0.5))
        for e in np.arange(-600.0, 600.0, 8.0)
        for n in (0.0, 250.0)
    ]
    obs = observations(_readings_at(street))[("p", "Alpha", "LTE")]
    assert obs.points is not None and len(obs.points) > len(obs)
    layer = predict_layer(
        obs, park="p", operator="Alpha", tech="LTE", threshold_dbm=THRESHOLD, validate=False
    )
    north = [
        i
        for i, c in enumerate(layer.cells.tolist())
        if not layer.measured[i] and 100.0 < _xy(int(c))[1] < 150.0 and abs(_xy(int(c))[0]) < 300.0
    ]
    assert north
    for i in north:
        truth = -100.0 + 0.2 * _xy(int(layer.cells[i]))[1]
        # From cell medians at the cells' centres: errors up to 1.5 dB and a std of 8.7 dB.
        assert abs(layer.predicted_dbm[i] - truth) < 0.5 and layer.std_db[i] < 2.0
        assert layer.lower_dbm[i] <= truth <= layer.upper_dbm[i]
