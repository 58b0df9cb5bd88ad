"""Predicted coverage: RSRP in unmeasured H3 cells from the measured ones, with a predictive interval.

Per (park, operator, technology) the model is fitted on **sub-cell medians** (:func:`observations`):
each measured cell's readings split by squares of :data:`POINT_M` metres, each square's median
placed at the mean reported position of its readings. A street crosses a cell off its centre, and
the readings near a neighbouring unmeasured cell say more about it than the median of the whole
cell at the cell's centre: in the simulator this cut the held-out error from 3.5 to 2.8 dB. Each
such median is modelled as

    median = trend(position) + f(position) + nugget + measurement error

* **trend**: with known cell sites (``sites``), ``a + b·log10(distance to the nearest site)``
  by least squares (log-distance path loss); without sites a plane ``a + b·x + c·y`` (a constant
  below :data:`MIN_TREND_CELLS` cells);
* ``f``: a Gaussian process (scikit-learn's ``GaussianProcessRegressor``) with a Matérn (ν = 1.5)
  covariance whose variance and range are fitted by marginal likelihood (a smooth RBF covariance
  predicted as well in the simulator but its intervals held only 84 % of true medians: it does not
  expect the sharp edges of buildings and holes);
* **nugget**: a ``WhiteKernel``, also fitted: variation between neighbouring cells that the
  smooth field does not carry (street readings that do not represent the whole cell, sub-cell
  shadowing);
* **measurement error**: the variance of each median, known from its readings (``π/2 · s² / n``
  with ``s²`` the variance of its readings shrunk towards the layer's pooled one: a median of 2
  readings is not trusted like one of 40), passed to the GP as per-row noise (``alpha``), so the
  fit and the interval widen where few readings were taken.

A target cell's prediction is ``trend + GP mean`` at its centre with the interval
``± z · sqrt(var_gp + calibration variance)`` for its true median: ``var_gp`` is the GP's
predictive variance of the cell median (latent field plus nugget); the **calibration variance**
is what no spatial model can see, the error of the fleet's mean offset. Calibration (``offsets``)
makes the devices of a layer agree with each other, not with the truth: their mean offset stays
unknown, with variance ``s² / k`` for ``k`` devices whose calibrated offsets spread by ``s``
(0 with a single device, which has no offset to spread). In the validation a held-out measured
median is compared with ``± z · sqrt(var_gp + its measurement variance)``: it shares the fleet's
offset with the training cells, so the calibration variance does not enter there.

``z`` is the two-sided normal quantile of ``confidence`` (1.645 for 90 %). A cell is
``predicted_dead`` when the upper bound is at or below the threshold, ``predicted_ok`` when the
lower bound is above it, ``predicted_uncertain`` otherwise. Measured cells are not in the
predicted layer: predictions never join the measured dead zones of :mod:`analytics.deadzones`.

**Cost bound.** The kernel's hyperparameters are fitted on at most ``max_local_cells`` training
rows (a seeded random subsample beyond that); predictions are made per square tile of ``tile_m``
metres from the ``max_local_cells`` training rows nearest the tile's centre, so one solve costs at
most ``O(max_local_cells³)`` and a park costs that times its tile count, however many cells and
readings were measured.

**Validation** (:func:`cross_validate`): spatial block cross-validation on the layer's own cells.
The cells are grouped into squares of ``cv_block_m`` metres, the squares dealt into
``cv_folds`` folds; each fold is predicted from the sub-cell medians of the other folds' cells
(trend refitted, kernel kept from the full fit) and compared with its measured cell medians: RMSE, bias (predicted minus measured), the
share of held-out medians inside their interval, and the RMSE of inverse-distance weighting
(power 2, the 12 nearest cell medians) on the same folds.

``no_service`` readings (reported at -140 dBm, below the modem's sensitivity) enter a median as
:data:`NO_SERVICE_FILL_DBM`: a value below every threshold that does not drag a cell's median
to a number no radio reports.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Final, Literal

import h3
import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

from analytics.calibration import DeviceOffset
from analytics.coverage import cell_area_m2, cell_center, cell_polygon, cell_str
from storage.query import CellSamples

FloatArray = npt.NDArray[np.float64]
PredictedClass = Literal["predicted_dead", "predicted_ok", "predicted_uncertain"]
NO_SERVICE_DBM: Final = -140.0
NO_SERVICE_FILL_DBM: Final = -130.0
"""What a ``no_service`` reading counts as in a cell median (module docstring)."""
MIN_TREND_CELLS: Final = 10
"""Below this many measured cells the trend is a constant."""
MIN_CELLS: Final = 3
"""A layer needs this many measured cells to be predicted."""
POINT_M: Final = 50.0
"""Side of the squares that split a cell's readings into sub-cell medians (module docstring)."""
_POOL_WEIGHT: Final = 5.0
"""Pseudo-readings of the pooled within-cell variance in each cell's variance."""
_M_PER_DEG_LAT: Final = 110_574.0
_M_PER_DEG_LON_EQ: Final = 111_320.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictOptions:
    """How the prediction is made (module docstring).

    Attributes:
        confidence: two-sided level of the predictive interval.
        margin_rings: H3 rings of cells around the park that are predicted too.
        max_local_cells: the most measured cells one GP solve uses (the cost bound).
        tile_m: side of the square tiles that share one neighbourhood.
        cv_block_m: side of the spatial blocks of the validation.
        cv_folds: folds of the validation.
        idw_neighbours: cells inverse-distance weighting averages (the baseline).
        seed: seed of the subsample and of the fold assignment.
    """

    confidence: float = 0.9
    margin_rings: int = 2
    max_local_cells: int = 400
    tile_m: float = 600.0
    cv_block_m: float = 400.0
    cv_folds: int = 5
    idw_neighbours: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), not {self.confidence}")
        if self.margin_rings < 0 or self.margin_rings > 10:
            raise ValueError("margin_rings must be between 0 and 10")
        if self.max_local_cells < 20:
            raise ValueError("max_local_cells must be at least 20")
        if self.tile_m <= 0 or self.cv_block_m <= 0:
            raise ValueError("tile_m and cv_block_m must be > 0")
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be at least 2")

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(0.5 + self.confidence / 2.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PointObservations:
    """Sub-cell medians: a cell's readings split by squares of ``point_m`` (module docstring)."""

    lon: FloatArray
    lat: FloatArray
    """Mean reported position of the readings of each point."""
    rsrp_median_dbm: FloatArray
    var_db2: FloatArray
    cell: npt.NDArray[np.int64]
    """Index of each point's cell in :attr:`CellObservations.cells`."""

    def __len__(self) -> int:
        return len(self.lon)


@dataclass(frozen=True, slots=True, kw_only=True)
class CellObservations:
    """The measured cells of one (park, operator, technology): median RSRP and its variance."""

    cells: npt.NDArray[np.uint64]
    rsrp_median_dbm: FloatArray
    var_db2: FloatArray
    """Variance of each cell's median (measurement error), dB²."""
    samples: npt.NDArray[np.int64]
    calibration_var_db2: float = 0.0
    """Variance of the devices' mean offset, shared by every cell of the layer (module docstring)."""
    points: PointObservations | None = None
    """The cells' sub-cell medians, which the model is fitted on; None: the cell medians at the
    cells' centres."""

    def __len__(self) -> int:
        return len(self.cells)


def _group_medians(
    groups: npt.NDArray[np.int64], values: FloatArray
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Per group id (``groups`` sorted): first index, median, variance of the median, count.

    The variance of a median is ``π/2 · s² / n``, ``s²`` the group's variance shrunk towards the
    pooled one by :data:`_POOL_WEIGHT` pseudo-readings (a group of 1-2 readings says little).
    """
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    medians = np.array([np.median(values[a:b]) for a, b in zip(starts, ends, strict=True)])
    counts = (ends - starts).astype(np.int64)
    within = np.array(
        [
            float(np.var(values[a:b], ddof=1)) if b - a > 1 else np.nan
            for a, b in zip(starts, ends, strict=True)
        ]
    )
    ok = ~np.isnan(within)
    pooled = float(np.average(within[ok], weights=counts[ok] - 1)) if ok.any() else 16.0
    dof = np.where(ok, counts - 1, 0).astype(np.float64)
    s2 = (dof * np.nan_to_num(within) + _POOL_WEIGHT * pooled) / (dof + _POOL_WEIGHT)
    return starts, medians.astype(np.float64), (math.pi / 2.0) * s2 / counts, counts


def _points(
    cell_of: npt.NDArray[np.int64], lon: FloatArray, lat: FloatArray, values: FloatArray, point_m: float
) -> PointObservations:
    """Sub-cell medians of one layer's readings (``cell_of``: each reading's cell index)."""
    proj = _Projection(float(lon.mean()), float(lat.mean()))
    sq = np.floor(proj.xy(lon, lat) / point_m).astype(np.int64)
    order = np.lexsort((sq[:, 1], sq[:, 0], cell_of))
    key = np.column_stack([cell_of, sq])[order]
    change = np.r_[True, (key[1:] != key[:-1]).any(axis=1)]
    groups = np.cumsum(change) - 1
    starts, medians, var, counts = _group_medians(groups, values[order])
    return PointObservations(
        lon=np.add.reduceat(lon[order], starts) / counts,
        lat=np.add.reduceat(lat[order], starts) / counts,
        rsrp_median_dbm=medians,
        var_db2=var,
        cell=cell_of[order][starts],
    )


def observations(
    samples: CellSamples, *, offsets: Iterable[DeviceOffset] = (), point_m: float | None = POINT_M
) -> dict[tuple[str, str, str], CellObservations]:
    """Per (park, operator, technology): every measured cell's median RSRP and its variance.

    ``offsets`` (from :func:`analytics.deadzones.assess_cells`) are subtracted first; the spread of
    the offsets of a layer's devices gives its calibration variance (module docstring). With
    ``point_m`` each cell's readings are also split into sub-cell medians by squares of that side
    (``points``); ``None`` keeps cell medians only.
    """
    if len(samples) == 0:
        return {}
    shift = {(o.operator, o.tech, o.dev): o.offset_db for o in offsets}
    rsrp = samples.rsrp_dbm.astype(np.float64).copy()
    no_service = rsrp <= NO_SERVICE_DBM
    if shift:
        rsrp -= np.array(
            [
                shift.get((str(o), str(t), str(d)), 0.0)
                for o, t, d in zip(samples.operator, samples.tech, samples.dev, strict=True)
            ]
        )
    rsrp[no_service] = NO_SERVICE_FILL_DBM
    keys = np.array(
        [f"{p}\x1f{o}\x1f{t}" for p, o, t in zip(samples.park, samples.operator, samples.tech, strict=True)]
    )
    out: dict[tuple[str, str, str], CellObservations] = {}
    for key in np.unique(keys).tolist():
        sel = np.flatnonzero(keys == key)
        cells_all = samples.h3[sel]
        order = np.argsort(cells_all, kind="stable")
        cells_sorted = cells_all[order]
        change = np.r_[True, cells_sorted[1:] != cells_sorted[:-1]]
        starts, medians, var, counts = _group_medians(np.cumsum(change) - 1, rsrp[sel][order])
        park, operator, tech = key.split("\x1f")
        devs = sorted({str(d) for d in samples.dev[sel].tolist()})
        points = None
        if point_m is not None:
            cell_of = np.empty(len(sel), dtype=np.int64)
            cell_of[order] = np.cumsum(change) - 1
            points = _points(
                cell_of,
                samples.lon[sel].astype(np.float64),
                samples.lat[sel].astype(np.float64),
                rsrp[sel],
                point_m,
            )
        out[(park, operator, tech)] = CellObservations(
            cells=cells_sorted[starts].astype(np.uint64),
            rsrp_median_dbm=medians,
            var_db2=var,
            samples=counts,
            calibration_var_db2=calibration_variance(
                [shift[(operator, tech, d)] for d in devs if (operator, tech, d) in shift]
            ),
            points=points,
        )
    return out


def calibration_variance(offsets_db: Sequence[float]) -> float:
    """Variance of the mean offset of ``k`` calibrated devices: ``s² / k`` (0 below 2 devices)."""
    if len(offsets_db) < 2:
        return 0.0
    return float(np.var(np.asarray(offsets_db, dtype=np.float64), ddof=1)) / len(offsets_db)


# -- geometry ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Projection:
    lon0: float
    lat0: float

    def xy(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        x = (lon - self.lon0) * _M_PER_DEG_LON_EQ * math.cos(math.radians(self.lat0))
        y = (lat - self.lat0) * _M_PER_DEG_LAT
        return np.column_stack([x, y]).astype(np.float64)


def _lonlat(cells: npt.NDArray[np.uint64]) -> FloatArray:
    return np.array([cell_center(int(c)) for c in cells.tolist()], dtype=np.float64).reshape(-1, 2)


# -- trend ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trend:
    """A fitted trend: ``kind`` and its coefficients."""

    kind: Literal["log_distance", "plane", "constant"]
    coef: tuple[float, ...]
    sites_xy: FloatArray | None = None

    def design(self, xy: FloatArray) -> FloatArray:
        return _design(self.kind, xy, self.sites_xy)

    def __call__(self, xy: FloatArray) -> FloatArray:
        out: FloatArray = self.design(xy) @ np.array(self.coef)
        return out

    def describe(self) -> str:
        if self.kind == "log_distance":
            return f"{self.coef[0]:.1f} {self.coef[1]:+.1f}·log10(distance to nearest site / m) dBm"
        if self.kind == "plane":
            return f"{self.coef[0]:.1f} {self.coef[1] * 1000:+.2f}·x_km {self.coef[2] * 1000:+.2f}·y_km dBm"
        return f"{self.coef[0]:.1f} dBm"


def _design(kind: str, xy: FloatArray, sites_xy: FloatArray | None) -> FloatArray:
    ones = np.ones(len(xy))
    if kind == "log_distance":
        assert sites_xy is not None
        d = np.sqrt(((xy[:, None, :] - sites_xy[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        return np.column_stack([ones, np.log10(np.maximum(d, 10.0))]).astype(np.float64)
    if kind == "plane":
        return np.column_stack([ones, xy[:, 0], xy[:, 1]]).astype(np.float64)
    return ones[:, None]


def fit_trend(xy: FloatArray, y: FloatArray, *, sites_xy: FloatArray | None) -> Trend:
    """Least-squares trend (module docstring)."""
    kind: Literal["log_distance", "plane", "constant"]
    if len(y) < MIN_TREND_CELLS:
        kind = "constant"
    elif sites_xy is not None and len(sites_xy):
        kind = "log_distance"
    else:
        kind = "plane"
    a = _design(kind, xy, sites_xy)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return Trend(kind, tuple(float(c) for c in coef), sites_xy if kind == "log_distance" else None)


# -- Gaussian process -------------------------------------------------------------------------------


def _kernel(var0: float) -> Kernel:
    return ConstantKernel(max(var0, 1.0), (0.1, 1e3)) * Matern(
        length_scale=150.0, length_scale_bounds=(20.0, 5000.0), nu=1.5
    ) + WhiteKernel(noise_level=max(var0 / 4.0, 0.5), noise_level_bounds=(1e-2, 1e3))


def fit_kernel(
    xy: FloatArray, resid: FloatArray, var_db2: FloatArray, *, max_cells: int, seed: int
) -> Kernel:
    """The kernel with hyperparameters fitted by marginal likelihood on at most ``max_cells`` rows."""
    if len(resid) > max_cells:
        idx = np.random.default_rng(seed).choice(len(resid), size=max_cells, replace=False)
        xy, resid, var_db2 = xy[idx], resid[idx], var_db2[idx]
    gp = GaussianProcessRegressor(_kernel(float(np.var(resid))), alpha=var_db2, n_restarts_optimizer=0)
    with warnings.catch_warnings():
        # A bound reached is a fitted value, not a failure (e.g. no nugget needed).
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(xy, resid)
    kernel: Kernel = gp.kernel_
    return kernel


def gp_predict(
    kernel: Kernel,
    xy: FloatArray,
    resid: FloatArray,
    var_db2: FloatArray,
    targets: FloatArray,
    *,
    max_local: int,
    tile_m: float,
) -> tuple[FloatArray, FloatArray]:
    """GP mean and variance at ``targets`` with fixed ``kernel``, per tile from the nearest
    ``max_local`` training cells (module docstring: the cost bound)."""
    mean = np.zeros(len(targets))
    var = np.zeros(len(targets))
    if len(targets) == 0:
        return mean, var
    if len(xy) <= max_local:  # one neighbourhood holds every cell: one solve
        tile_of = np.zeros(len(targets), dtype=np.int64)
    else:
        tiles = np.floor(targets / tile_m).astype(np.int64)
        _, tile_of = np.unique(tiles, axis=0, return_inverse=True)
        tile_of = tile_of.ravel()
    for t in range(int(tile_of.max()) + 1):
        rows = np.flatnonzero(tile_of == t)
        if len(xy) > max_local:
            centre = targets[rows].mean(axis=0)
            near = np.argpartition(((xy - centre) ** 2).sum(axis=1), max_local - 1)[:max_local]
        else:
            near = np.arange(len(xy))
        gp = GaussianProcessRegressor(kernel, alpha=var_db2[near], optimizer=None)
        gp.fit(xy[near], resid[near])
        m, s = gp.predict(targets[rows], return_std=True)
        mean[rows] = m
        var[rows] = np.asarray(s) ** 2
    return mean, var


def idw(xy: FloatArray, y: FloatArray, targets: FloatArray, *, k: int, power: float = 2.0) -> FloatArray:
    """Inverse-distance weighting of the ``k`` nearest cells (the baseline of the validation)."""
    out = np.empty(len(targets))
    k = min(k, len(xy))
    for i, t in enumerate(targets):
        d2 = ((xy - t) ** 2).sum(axis=1)
        near = np.argpartition(d2, k - 1)[:k]
        d = np.sqrt(d2[near])
        if d.min() < 1e-6:
            out[i] = float(y[near][d.argmin()])
            continue
        w = d ** (-power)
        out[i] = float((w * y[near]).sum() / w.sum())
    return out


# -- the model of one layer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A layer's fitted trend and kernel over its measured cells (local coordinates in metres).

    ``xy``, ``y``, ``var_db2`` are the cells (centre, median, variance of the median); the model is
    fitted on the ``train_*`` rows: the cells' sub-cell medians, or the cells themselves without
    them; ``train_cell`` is each row's cell index.
    """

    projection: _Projection
    trend: Trend
    kernel: Kernel
    xy: FloatArray
    y: FloatArray
    var_db2: FloatArray
    sites_xy: FloatArray | None
    train_xy: FloatArray
    train_y: FloatArray
    train_var_db2: FloatArray
    train_cell: npt.NDArray[np.int64]

    def predict(
        self, cells: npt.NDArray[np.uint64], options: PredictOptions
    ) -> tuple[FloatArray, FloatArray]:
        """Predicted median RSRP and its variance (GP, no measurement error) at ``cells``."""
        ll = _lonlat(cells)
        targets = self.projection.xy(ll[:, 0], ll[:, 1])
        resid = self.train_y - self.trend(self.train_xy)
        m, v = gp_predict(
            self.kernel,
            self.train_xy,
            resid,
            self.train_var_db2,
            targets,
            max_local=options.max_local_cells,
            tile_m=options.tile_m,
        )
        return self.trend(targets) + m, v


def fit_model(
    obs: CellObservations,
    *,
    sites: Sequence[tuple[float, float]] | None = None,
    options: PredictOptions = PredictOptions(),
) -> FittedModel:
    """Trend and kernel of one layer; ``sites`` are ``(lon, lat)`` of its cell sites.

    Raises:
        ValueError: fewer than :data:`MIN_CELLS` measured cells.
    """
    if len(obs) < MIN_CELLS:
        raise ValueError(f"a prediction needs at least {MIN_CELLS} measured cells, not {len(obs)}")
    ll = _lonlat(obs.cells)
    proj = _Projection(float(ll[:, 0].mean()), float(ll[:, 1].mean()))
    xy = proj.xy(ll[:, 0], ll[:, 1])
    sites_xy = None
    if sites:
        s = np.array(sites, dtype=np.float64).reshape(-1, 2)
        sites_xy = proj.xy(s[:, 0], s[:, 1])
    pts = obs.points
    if pts is not None and len(pts):
        t_xy, t_y, t_var, t_cell = proj.xy(pts.lon, pts.lat), pts.rsrp_median_dbm, pts.var_db2, pts.cell
    else:
        t_xy, t_y, t_var, t_cell = xy, obs.rsrp_median_dbm, obs.var_db2, np.arange(len(obs), dtype=np.int64)
    trend = fit_trend(t_xy, t_y, sites_xy=sites_xy)
    kernel = fit_kernel(t_xy, t_y - trend(t_xy), t_var, max_cells=options.max_local_cells, seed=options.seed)
    return FittedModel(
        proj, trend, kernel, xy, obs.rsrp_median_dbm, obs.var_db2, sites_xy, t_xy, t_y, t_var, t_cell
    )


# -- validation -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossValidation:
    """Held-out predictions of the block cross-validation, one row per measured cell."""

    cells: npt.NDArray[np.uint64]
    fold: npt.NDArray[np.int64]
    observed_dbm: FloatArray
    observed_var_db2: FloatArray
    predicted_dbm: FloatArray
    var_gp_db2: FloatArray
    idw_dbm: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """What the planner sees next to a prediction (module docstring)."""

    method: str
    folds: int
    cells: int
    rmse_db: float | None
    bias_db: float | None
    interval_coverage: float | None
    idw_rmse_db: float | None

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None, n: int) -> float | None:
            return None if x is None else round(x, n)

        return {
            "method": self.method,
            "folds": self.folds,
            "cells": self.cells,
            "rmse_db": r(self.rmse_db, 2),
            "bias_db": r(self.bias_db, 2),
            "interval_coverage": r(self.interval_coverage, 3),
            "idw_rmse_db": r(self.idw_rmse_db, 2),
        }


def _blocks(xy: FloatArray, block_m: float, folds: int, seed: int) -> npt.NDArray[np.int64]:
    keys = np.floor(xy / block_m).astype(np.int64)
    _, block = np.unique(keys, axis=0, return_inverse=True)
    block = block.ravel()
    n_blocks = int(block.max()) + 1
    perm = np.random.default_rng(seed).permutation(n_blocks)
    fold_of_block = np.empty(n_blocks, dtype=np.int64)
    fold_of_block[perm] = np.arange(n_blocks) % min(folds, n_blocks)
    out: npt.NDArray[np.int64] = fold_of_block[block]
    return out


def cross_validate(model: FittedModel, options: PredictOptions = PredictOptions()) -> CrossValidation:
    """Spatial block cross-validation of ``model`` on its own cells (kernel kept, trend refitted)."""
    n = len(model.y)
    fold = _blocks(model.xy, options.cv_block_m, options.cv_folds, options.seed)
    pred = np.full(n, np.nan)
    var = np.full(n, np.nan)
    idw_pred = np.full(n, np.nan)
    for f in np.unique(fold).tolist():
        test = fold == f
        train = ~test
        if train.sum() < MIN_CELLS:
            continue
        rows = train[model.train_cell]
        xy_tr, y_tr, v_tr = model.train_xy[rows], model.train_y[rows], model.train_var_db2[rows]
        trend = fit_trend(xy_tr, y_tr, sites_xy=model.sites_xy)
        m, v = gp_predict(
            model.kernel,
            xy_tr,
            y_tr - trend(xy_tr),
            v_tr,
            model.xy[test],
            max_local=options.max_local_cells,
            tile_m=options.tile_m,
        )
        pred[test] = trend(model.xy[test]) + m
        var[test] = v
        idw_pred[test] = idw(model.xy[train], model.y[train], model.xy[test], k=options.idw_neighbours)
    return CrossValidation(
        cells=np.zeros(0, dtype=np.uint64),
        fold=fold,
        observed_dbm=model.y,
        observed_var_db2=model.var_db2,
        predicted_dbm=pred,
        var_gp_db2=var,
        idw_dbm=idw_pred,
    )


def summarize_validation(cv: CrossValidation, options: PredictOptions = PredictOptions()) -> Validation:
    """RMSE, bias and interval coverage against the held-out measured medians."""
    ok = ~np.isnan(cv.predicted_dbm)
    method = f"spatial block cross-validation ({options.cv_block_m:.0f} m blocks, {options.cv_folds} folds)"
    if not ok.any():
        return Validation(
            method=method,
            folds=0,
            cells=0,
            rmse_db=None,
            bias_db=None,
            interval_coverage=None,
            idw_rmse_db=None,
        )
    err = cv.predicted_dbm[ok] - cv.observed_dbm[ok]
    half = options.z * np.sqrt(cv.var_gp_db2[ok] + cv.observed_var_db2[ok])
    idw_err = cv.idw_dbm[ok] - cv.observed_dbm[ok]
    return Validation(
        method=method,
        folds=len(np.unique(cv.fold[ok])),
        cells=int(ok.sum()),
        rmse_db=float(np.sqrt(np.mean(err**2))),
        bias_db=float(np.mean(err)),
        interval_coverage=float(np.mean(np.abs(err) <= half)),
        idw_rmse_db=float(np.sqrt(np.mean(idw_err**2))),
    )


# -- the predicted layer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictedLayer:
    """Predictions over a park (and its margin) for one operator and technology.

    Arrays cover every target cell, measured or not (``measured``); the predicted layer proper
    (:meth:`features`) is the unmeasured ones.
    """

    park: str
    operator: str
    tech: str
    threshold_dbm: float
    confidence: float
    cells: npt.NDArray[np.uint64]
    in_park: npt.NDArray[np.bool_]
    measured: npt.NDArray[np.bool_]
    predicted_dbm: FloatArray
    std_db: FloatArray
    """Predictive standard deviation of each cell's true median (GP and calibration)."""
    lower_dbm: FloatArray
    upper_dbm: FloatArray
    cls: npt.NDArray[np.object_]
    validation: Validation
    trend: str
    kernel: str
    observed: CellObservations = field(repr=False)

    def __len__(self) -> int:
        return len(self.cells)

    def features(self) -> list[dict[str, Any]]:
        """GeoJSON Features of the unmeasured cells (the predicted layer)."""
        out: list[dict[str, Any]] = []
        for i in np.flatnonzero(~self.measured).tolist():
            cell = int(self.cells[i])
            out.append(
                {
                    "type": "Feature",
                    "id": f"{cell_str(cell)}:{self.operator}:{self.tech}",
                    "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in cell_polygon(cell)]]},
                    "properties": {
                        "cell": cell_str(cell),
                        "park": self.park,
                        "operator": self.operator,
                        "tech": self.tech,
                        "predicted_rsrp_dbm": round(float(self.predicted_dbm[i]), 1),
                        "lower_dbm": round(float(self.lower_dbm[i]), 1),
                        "upper_dbm": round(float(self.upper_dbm[i]), 1),
                        "std_db": round(float(self.std_db[i]), 2),
                        "class": str(self.cls[i]),
                        "in_park": bool(self.in_park[i]),
                        "area_m2": round(cell_area_m2(cell), 1),
                    },
                }
            )
        return out

    def meta(self) -> dict[str, Any]:
        """What the answer carries beside the features."""
        unmeasured = ~self.measured
        counts = {c: int(((self.cls == c) & unmeasured).sum()) for c in CLASSES}
        return {
            "park": self.park,
            "operator": self.operator,
            "tech": self.tech,
            "threshold_dbm": self.threshold_dbm,
            "confidence": self.confidence,
            "measured_cells": int(self.measured.sum()),
            "predicted_cells": int(unmeasured.sum()),
            "classes": counts,
            "trend": self.trend,
            "kernel": self.kernel,
            "calibration_std_db": round(math.sqrt(self.observed.calibration_var_db2), 2),
        }


CLASSES: Final[tuple[PredictedClass, ...]] = ("predicted_dead", "predicted_ok", "predicted_uncertain")


def classify(lower: FloatArray, upper: FloatArray, threshold_dbm: float) -> npt.NDArray[np.object_]:
    """``predicted_dead`` (upper ≤ threshold), ``predicted_ok`` (lower > threshold), else uncertain."""
    out = np.full(len(lower), "predicted_uncertain", dtype=object)
    out[upper <= threshold_dbm] = "predicted_dead"
    out[lower > threshold_dbm] = "predicted_ok"
    return out


def target_cells(
    measured: Iterable[int], park_cells: frozenset[int] | None, margin_rings: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """The cells to predict (park, its margin ring, and the measured cells), with an in-park mask.

    Without a park boundary the measured cells stand for the park.
    """
    measured_set = {int(c) for c in measured}
    inside = set(park_cells) if park_cells else set(measured_set)
    ring: set[int] = set(inside)
    if margin_rings:
        for c in inside:
            ring.update(h3.str_to_int(n) for n in h3.grid_disk(cell_str(c), margin_rings))
    cells = np.array(sorted(ring | measured_set), dtype=np.uint64)
    in_park = np.array([int(c) in inside for c in cells.tolist()], dtype=bool)
    return cells, in_park


def predict_layer(
    obs: CellObservations,
    *,
    park: str,
    operator: str,
    tech: str,
    threshold_dbm: float,
    park_cells: frozenset[int] | None = None,
    sites: Sequence[tuple[float, float]] | None = None,
    options: PredictOptions = PredictOptions(),
    validate: bool = True,
) -> PredictedLayer:
    """Predict every cell of a park and its margin from the layer's measured cells, with validation.

    ``sites`` are ``(lon, lat)`` of the operator's cell sites for this technology (the
    log-distance trend); without them the trend is a plane. ``validate=False`` skips the
    cross-validation (its figures are then None), for callers that only rank cells.

    Raises:
        ValueError: fewer than :data:`MIN_CELLS` measured cells.
    """
    # One BLAS thread: these solves are small, and threads fighting over shared cores made a
    # 400-cell kernel fit 5x slower (13 s against 2.5 s on a loaded 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        model = fit_model(obs, sites=sites, options=options)
        validation = (
            summarize_validation(cross_validate(model, options), options)
            if validate
            else Validation(
                method="none",
                folds=0,
                cells=0,
                rmse_db=None,
                bias_db=None,
                interval_coverage=None,
                idw_rmse_db=None,
            )
        )
        cells, in_park = target_cells(obs.cells.tolist(), park_cells, options.margin_rings)
        mean, var = model.predict(cells, options)
    measured = np.isin(cells, obs.cells)
    std = np.sqrt(var + obs.calibration_var_db2)
    half = options.z * std
    lower, upper = mean - half, mean + half
    return PredictedLayer(
        park=park,
        operator=operator,
        tech=tech,
        threshold_dbm=threshold_dbm,
        confidence=options.confidence,
        cells=cells,
        in_park=in_park,
        measured=measured,
        predicted_dbm=mean,
        std_db=std,
        lower_dbm=lower,
        upper_dbm=upper,
        cls=classify(lower, upper, threshold_dbm),
        validation=validation,
        trend=f"{model.trend.kind}: {model.trend.describe()}",
        kernel=str(model.kernel),
        observed=obs,
    )


def predict_all(
    samples: CellSamples,
    *,
    thresholds_dbm: Mapping[str, float],
    parks: Mapping[str, frozenset[int]] | None = None,
    sites: Mapping[tuple[str, str, str], Sequence[tuple[float, float]]] | None = None,
    offsets: Iterable[DeviceOffset] = (),
    options: PredictOptions = PredictOptions(),
) -> list[PredictedLayer]:
    """Every (park, operator, technology) of ``samples`` with enough measured cells, predicted.

    ``thresholds_dbm``: technology → dead threshold (technologies without one are left out);
    ``parks``: park → its cells; ``sites``: (park, operator, tech) → site positions.
    """
    out: list[PredictedLayer] = []
    for (park, operator, tech), obs in sorted(observations(samples, offsets=offsets).items()):
        if tech not in thresholds_dbm or len(obs) < MIN_CELLS:
            continue
        out.append(
            predict_layer(
                obs,
                park=park,
                operator=operator,
                tech=tech,
                threshold_dbm=thresholds_dbm[tech],
                park_cells=(parks or {}).get(park),
                sites=(sites or {}).get((park, operator, tech)),
                options=options,
            )
        )
    return out
