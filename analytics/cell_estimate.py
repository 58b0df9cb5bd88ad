"""The median RSRP over a whole H3 cell's area from street readings: readings weighted by the area they represent.

A cell is dead when the median of its signal over the **whole cell** is at or below the threshold
(the simulator's truth: the median over 49 points spread evenly over the hexagon), but a drive
test measures along the few streets that cross it, and GNSS error moves readings taken near an
edge into the neighbour. The plain median of a cell's readings is the median of its streets: where
one street runs along a building or a hole's edge, it can lie several dB from the cell's.

This module weighs each reading by the share of the cell's area it is the nearest witness of.
The cell's **area points** are the centres of its children :data:`AREA_POINTS_STEPS` resolutions
finer (49 points about 9 m apart at resolution 10, covering the hexagon evenly). Each area point
spreads a weight of 1 over its **witnesses**: its :data:`NEAREST_READINGS` nearest readings of the
layer within :data:`WITNESS_RADIUS_M` (reported positions, readings of the cell and of its six
neighbours: a reading that GNSS error put across the edge still counts where it was reported). A
reading's weight is the sum it received; readings that are nobody's witness get none. So a side
of the cell that one street covers densely does not outvote a side covered sparsely, and the
estimate (:attr:`AreaTest.median_dbm`, the weighted median) targets the cell-area median. The test
decides a cell only when at least :data:`MIN_REPRESENTED` of its area points have a witness and
at least :data:`MIN_READINGS` readings carry a weight; otherwise the readings-only verdict stands.

The confidence that the area median is at or below the threshold is the **weighted signed-rank
test** (:func:`weighted_signed_rank_confidence`): the Wilcoxon signed-rank statistic of
:func:`analytics.deadzones.median_below_confidence` with each reading's rank multiplied by its
weight, normal approximation (mean ``½ Σ wᵢ Rᵢ``, variance ``¼ Σ wᵢ² Rᵢ²``). With equal weights it
is the usual test; unequal weights lower its effective number of readings, so a cell that one
short stretch of street represents is not decided on the readings' count alone.

:func:`area_dead_confidence` applies this to the cells the readings-only test left undecided
(``analytics.deadzones.assess_cells`` with ``DetectOptions(area_weighted=True)``; off by default:
on the confirmation seeds it bought recall with precision, ``docs/coverage.md``). The readings
are the calibrated ones, ``no_service`` as -140 dBm (far below every threshold: they rank lowest,
as in the readings-only test). A layer with readings without a position is left to the
readings-only test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import h3
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

AREA_POINTS_STEPS: Final = 2
"""The area points are a cell's children this many resolutions finer (49 points)."""
NEAREST_READINGS: Final = 10
"""Each area point spreads its weight over this many nearest readings (fading averages out over
several, the nearest alone would be one faded reading)."""
WITNESS_RADIUS_M: Final = 35.0
"""A reading farther than this from an area point is not its witness."""
MIN_REPRESENTED: Final = 0.5
"""The area test decides a cell only when at least this share of its area points has a witness."""
MIN_READINGS: Final = 10
"""... and at least this many readings carry a weight (the normal approximation of the rank test,
as in the readings-only test)."""
_M_PER_DEG_LAT: Final = 110_574.0
_M_PER_DEG_LON_EQ: Final = 111_320.0


@lru_cache(maxsize=65536)
def area_points(cell: int) -> tuple[tuple[float, float], ...]:
    """``(lon, lat)`` of a cell's area points: its children :data:`AREA_POINTS_STEPS` finer."""
    s = h3.int_to_str(int(cell))
    res = h3.get_resolution(s) + AREA_POINTS_STEPS
    return tuple(
        (lon, lat) for lat, lon in (h3.cell_to_latlng(c) for c in sorted(h3.cell_to_children(s, res)))
    )


@lru_cache(maxsize=65536)
def _disk(cell: int) -> tuple[int, ...]:
    return tuple(sorted(int(h3.str_to_int(c)) for c in h3.grid_disk(h3.int_to_str(int(cell)), 1)))


def area_weights(
    readings_xy_m: FloatArray,
    targets_xy_m: FloatArray,
    *,
    nearest: int = NEAREST_READINGS,
    radius_m: float = WITNESS_RADIUS_M,
) -> tuple[FloatArray, float]:
    """Weight of each reading and the share of area points with a witness.

    Each area point (``targets_xy_m``) spreads a weight of 1 evenly over its witnesses: its
    ``nearest`` nearest readings among those within ``radius_m`` (fewer if fewer are in reach;
    none: the point is not represented).
    """
    n, t = len(readings_xy_m), len(targets_xy_m)
    if n == 0 or t == 0:
        return np.zeros(n), 0.0
    k = min(nearest, n)
    d2 = ((targets_xy_m[:, None, :] - readings_xy_m[None, :, :]) ** 2).sum(axis=2)
    near = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (t, n))
    within = np.take_along_axis(d2, near, axis=1) <= radius_m**2
    count = within.sum(axis=1)
    share = np.where(count > 0, 1.0 / np.maximum(count, 1), 0.0)
    weights: FloatArray = np.bincount(
        np.ravel(near), weights=np.ravel(within * share[:, None]), minlength=n
    ).astype(np.float64)
    return weights, float((count > 0).mean())


def weighted_signed_rank_confidence(diff: FloatArray, weights: FloatArray) -> float:
    """Confidence that the weighted population behind ``diff`` (reading minus threshold) has its
    median below 0: the signed-rank statistic with each rank times its weight (module docstring).

    Readings exactly at the threshold or with weight 0 are dropped; 0.5 when nothing is left.
    """
    keep = (diff != 0) & (weights > 0)
    d, w = diff[keep], weights[keep]
    if len(d) == 0:
        return 0.5
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], len(a)]
    ranks = np.empty(len(a))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    wr = w * ranks
    var = float((wr**2).sum()) / 4.0
    if var <= 0:
        return 0.5
    t_minus = float(wr[d < 0].sum())
    mean = float(wr.sum()) / 2.0
    correction = 0.5 * float((w**2).sum() / w.sum())  # the usual 0.5 when every weight is 1
    z = (t_minus - mean - correction) / math.sqrt(var)
    return float(1.0 - 0.5 * math.erfc(z / math.sqrt(2.0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaTest:
    """The area-weighted test of one cell."""

    below_confidence: float
    """Confidence that the cell-area median is at or below the threshold."""
    median_dbm: float
    """Area-weighted median of the readings."""
    readings: int
    """Readings with a weight."""
    represented: float
    """Share of the area points with a witness."""

    @property
    def decisive(self) -> bool:
        """Enough readings and enough of the area witnessed for the test to decide the cell."""
        return self.readings >= MIN_READINGS and self.represented >= MIN_REPRESENTED


def weighted_median(values: FloatArray, weights: FloatArray) -> float:
    """The smallest value at which the cumulative weight reaches half the total."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])


def area_test(
    readings_xy_m: FloatArray,
    level_dbm: FloatArray,
    targets_xy_m: FloatArray,
    threshold_dbm: float,
    *,
    nearest: int = NEAREST_READINGS,
    radius_m: float = WITNESS_RADIUS_M,
) -> AreaTest:
    """The area-weighted test of one cell: readings around it (metres, calibrated dBm) and its
    area points (metres, same projection)."""
    w, represented = area_weights(readings_xy_m, targets_xy_m, nearest=nearest, radius_m=radius_m)
    used = w > 0
    if not used.any():
        return AreaTest(below_confidence=0.0, median_dbm=math.nan, readings=0, represented=0.0)
    return AreaTest(
        below_confidence=weighted_signed_rank_confidence(level_dbm - threshold_dbm, w),
        median_dbm=weighted_median(level_dbm[used], w[used]),
        readings=int(used.sum()),
        represented=represented,
    )


def _xy(lon: FloatArray, lat: FloatArray, lon0: float, lat0: float) -> FloatArray:
    x = (lon - lon0) * _M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    y = (lat - lat0) * _M_PER_DEG_LAT
    return np.column_stack([x, y]).astype(np.float64)


def area_dead_confidence(
    *,
    layer: IntArray,
    cell: npt.NDArray[np.uint64],
    lon: FloatArray,
    lat: FloatArray,
    level_dbm: FloatArray,
    threshold_dbm: FloatArray,
    targets: Sequence[tuple[int, int]],
    nearest: int = NEAREST_READINGS,
) -> FloatArray:
    """:func:`area_test` confidence of each target ``(layer, cell)``; NaN where it cannot decide.

    ``layer`` (a code per (park, operator, technology)), ``cell``, ``lon``/``lat`` (reported),
    ``level_dbm`` (calibrated, ``no_service`` at -140) and ``threshold_dbm`` are per reading. A
    target whose layer has a reading without a position, or that is not :attr:`AreaTest.decisive`,
    gets NaN.
    """
    out = np.full(len(targets), math.nan)
    if not targets:
        return out
    order = np.lexsort((cell, layer))
    keys = np.c_[layer[order], cell[order].view(np.int64)]
    new = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(order)]
    span = {
        (int(keys[s, 0]), int(np.uint64(keys[s, 1]))): (int(s), int(e))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    }
    unplaced = set(np.unique(layer[np.isnan(lon) | np.isnan(lat)]).tolist())
    for i, (g, c) in enumerate(targets):
        if g in unplaced:
            continue
        rows = np.concatenate(
            [order[a:b] for a, b in (span.get((g, n), (0, 0)) for n in _disk(c))] or [np.zeros(0, np.int64)]
        )
        if len(rows) == 0:
            continue
        pts = np.array(area_points(c), dtype=np.float64)
        lon0, lat0 = float(pts[:, 0].mean()), float(pts[:, 1].mean())
        res = area_test(
            _xy(lon[rows], lat[rows], lon0, lat0),
            level_dbm[rows],
            _xy(pts[:, 0], pts[:, 1], lon0, lat0),
            float(threshold_dbm[rows[0]]),
            nearest=nearest,
        )
        if res.decisive:
            out[i] = res.below_confidence
    return out
