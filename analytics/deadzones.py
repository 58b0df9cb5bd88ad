"""Dead zones (coverage holes) and interference zones: a confidence test per H3 cell, then zones.

Per (park, operator, technology) and H3 cell, :func:`assess_cells` reads the raw readings:

1. **Calibration**: per-device offsets (:mod:`analytics.calibration`) are estimated from cells
   several devices measured (anchored on reference devices whose offset is known, if any) and
   subtracted from every measured RSRP.
2. **Position error**: a reading whose reported position lies within ``gnss_error_m`` of its
   cell's border may belong to the neighbour; it is left out of the test (approximating the
   hexagon by its inscribed circle, so the test reads only readings certainly inside).
3. **A one-sided test on the median** (:func:`median_below_confidence`): the cell is **dead**
   when its readings show at ``confidence`` that its median RSRP is at or below the threshold
   (``no_service`` readings, RSRP -140, always are below), **covered** when they show the
   opposite at the same confidence, and otherwise **uncertain**: never dead, listed for the next
   survey. With few readings the test is the exact sign test (with ``n`` readings of which ``k``
   are at or below the threshold, dead when ``P(Bin(n, 1/2) >= k) <= 1 - confidence``); from
   :data:`SIGNED_RANK_MIN_N` readings on it is the Wilcoxon signed-rank test, which weighs how far
   readings lie from the threshold, so the spread within the cell (fading, shadowing) sets how
   many readings a decision needs.
4. **Optionally, the cell's area** (``area_weighted``, off by default;
   :mod:`analytics.cell_estimate`): a cell that step 3 leaves undecided is decided by the same
   test with each reading weighted by the share of the cell's area it is the nearest witness of.
5. **Interference**: a cell that is not dead, whose SINR readings show the same way that their
   median is below the profile's SINR floor, is an **interference** cell (an optimisation job).

Cells that share an edge and have the same state form one zone (:func:`find_zones`). A zone
carries its cells, cause (``coverage``; ``no_service`` when most of its readings found no
service), confidence (the lowest of its cells'), readings, devices, worst (lowest p10) and
median RSRP, first and last seen. Zones are ranked by area, largest first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Literal

import h3
import numpy as np
import numpy.typing as npt

from analytics.calibration import DeviceOffset, estimate_offsets
from analytics.cell_estimate import area_dead_confidence
from analytics.coverage import cell_area_m2, cell_center, cell_str
from analytics.grouped import dense_ids, distinct_count, group_value_order, string_codes
from analytics.signal import DEFAULT_PROFILE, SignalProfile
from storage.query import CellSamples

NO_SERVICE_RSRP_DBM: Final = -140.0
"""RSRP of a ``no_service`` reading (the wire contract's reporting floor)."""
STATES: Final = ("dead", "interference", "covered", "uncertain")
State = Literal["dead", "interference", "covered", "uncertain"]
ZoneKind = Literal["dead", "interference"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectOptions:
    """How sure the test must be, and what it knows about the readings.

    Attributes:
        confidence: a cell is dead (or covered) only at this one-sided confidence.
        max_class: ``none``: dead means a coverage hole (RSRP at or below the profile's hole
            threshold); ``poor``: the user's wider choice, weak cells (RSRP at or below -100 dBm
            for LTE/NR) count as dead too.
        gnss_error_m: readings this close to a cell border are left out of the test.
        calibrate: estimate and subtract per-device offsets.
        reference_offsets_db: ``(device, offset dB)`` of reference devices, whose offset is known
            (a calibrated scanner: 0); each anchors the calibration of the devices that measured
            the same cells (:mod:`analytics.calibration`).
        area_weighted: a cell the readings-only test leaves undecided is decided by the
            area-weighted test of its cell-area median (:mod:`analytics.cell_estimate`). Off by
            default: on the confirmation seeds it bought recall with precision
            (``docs/coverage.md``, "Tried and not adopted").
    """

    confidence: float = 0.9
    max_class: str = "none"
    gnss_error_m: float = 10.0
    calibrate: bool = True
    reference_offsets_db: tuple[tuple[str, float], ...] = ()
    area_weighted: bool = False

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), not {self.confidence}")
        if self.max_class not in ("none", "poor", "fair", "good"):
            raise ValueError(f"max_class must be one of none, poor, fair, good; not {self.max_class!r}")
        if self.gnss_error_m < 0:
            raise ValueError("gnss_error_m must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class CellAssessment:
    """The verdict per (park, H3 cell, operator, technology), rows in the order of the input groups."""

    park: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    h3: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    operator: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    tech: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    state: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    cause: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    """``coverage`` or ``no_service`` for dead cells, ``interference`` for interference cells, else None."""
    confidence: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Confidence in ``state``; for an uncertain cell, the confidence that it is dead."""
    samples: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Readings in the cell (all of them)."""
    tested: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Readings used by the test (inside the cell by more than the GNSS error)."""
    below: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Tested readings at or below the threshold."""
    no_service: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    devices: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    threshold_dbm: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    rsrp_median_dbm: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Median of the calibrated readings (``no_service`` as -140)."""
    rsrp_p10_dbm: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    sinr_median_db: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    first_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    offsets: tuple[DeviceOffset, ...] = ()

    def __len__(self) -> int:
        return len(self.h3)

    def lookup(self) -> dict[tuple[str, int, str, str], int]:
        """(park, cell, operator, tech) -> row."""
        return {
            (p, int(c), o, t): i
            for i, (p, c, o, t) in enumerate(
                zip(
                    self.park.tolist(),
                    self.h3.tolist(),
                    self.operator.tolist(),
                    self.tech.tolist(),
                    strict=True,
                )
            )
        }


@lru_cache(maxsize=4096)
def _sign_tail(n: int) -> npt.NDArray[np.float64]:
    """``P(Bin(n, 1/2) >= k)`` for ``k = 0 .. n + 1``."""
    if n > 1000:  # normal approximation with continuity correction; exact enough for a 0.9 test
        k = np.arange(n + 2, dtype=np.float64)
        z = (k - 0.5 - n / 2.0) / math.sqrt(n / 4.0)
        return np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in z.tolist()])
    pmf = np.array([math.comb(n, i) for i in range(n + 1)], dtype=np.float64) / float(2**n)
    tail: npt.NDArray[np.float64] = np.r_[np.cumsum(pmf[::-1])[::-1], 0.0]
    return tail


def sign_test_confidence(n: int, k: int) -> float:
    """Confidence that the median is at or below the threshold when ``k`` of ``n`` readings are:
    ``1 - P(Bin(n, 1/2) >= k)`` (0 when there are no readings)."""
    if n <= 0:
        return 0.0
    return float(1.0 - _sign_tail(n)[k])


SIGNED_RANK_MIN_N: Final = 10
"""From this many readings on, the signed-rank test (normal approximation) replaces the sign test."""


def median_below_confidence(diff: npt.NDArray[np.float64]) -> float:
    """Confidence that the median of the population behind ``diff`` (reading minus threshold) is
    below 0.

    Fewer than :data:`SIGNED_RANK_MIN_N` readings: the exact sign test (counts only; a reading
    exactly at the threshold counts as below, the hole threshold being inclusive). From then on
    the Wilcoxon signed-rank test, which also weighs how far each reading lies from the threshold
    (normal approximation with continuity and tie correction; readings at the threshold are
    dropped). The signed-rank test assumes the readings spread symmetrically around their median
    (fading in dB, shadowing); ``no_service`` readings at -140 dBm are far below every threshold
    and simply rank lowest.
    """
    n = len(diff)
    if n == 0:
        return 0.0
    if n < SIGNED_RANK_MIN_N:
        return sign_test_confidence(n, int((diff <= 0).sum()))
    d = diff[diff != 0]
    m = len(d)
    if m == 0:
        return 0.5
    ranks = _average_ranks(np.abs(d))
    w_minus = float(ranks[d < 0].sum())
    mean = m * (m + 1) / 4.0
    _, counts = np.unique(np.abs(d), return_counts=True)
    var = m * (m + 1) * (2 * m + 1) / 24.0 - float((counts**3 - counts).sum()) / 48.0
    if var <= 0:
        return 0.5
    z = (w_minus - mean - 0.5) / math.sqrt(var)
    return float(1.0 - 0.5 * math.erfc(z / math.sqrt(2.0)))


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    sorted_v = values[order]
    ranks = np.empty(len(values))
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    return ranks


def grouped_median_below_confidence(
    group: npt.NDArray[np.int64], diff: npt.NDArray[np.float64], n_groups: int
) -> npt.NDArray[np.float64]:
    """:func:`median_below_confidence` of every group at once: ``group`` holds each value's group
    (``0 .. n_groups - 1``, any order). The same test and the same figures, bit for bit: ranks are
    half-integers, so their sums are exact in any order."""
    return _grouped_median_confidences(group, diff, n_groups)[0]


def _grouped_median_confidences(
    group: npt.NDArray[np.int64], diff: npt.NDArray[np.float64], n_groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`grouped_median_below_confidence` of ``diff`` and of ``-diff`` (the median above 0),
    from one sort: both tests rank the same ``|diff|``."""
    out = np.zeros(n_groups)
    out_above = np.zeros(n_groups)
    if len(diff) == 0:
        return out, out_above
    n = np.bincount(group, minlength=n_groups)
    below = np.bincount(group, weights=(diff <= 0).astype(np.float64), minlength=n_groups)
    above = np.bincount(group, weights=(diff >= 0).astype(np.float64), minlength=n_groups)
    for g in np.flatnonzero((n > 0) & (n < SIGNED_RANK_MIN_N)).tolist():
        out[g] = sign_test_confidence(int(n[g]), int(below[g]))
        out_above[g] = sign_test_confidence(int(n[g]), int(above[g]))
    big = n >= SIGNED_RANK_MIN_N
    out[big] = 0.5  # until shown otherwise: no reading off the threshold, or no spread
    out_above[big] = 0.5
    sel = big[group] & (diff != 0)
    if not sel.any():
        return out, out_above
    g_sel, d = group[sel], diff[sel]
    order = group_value_order(g_sel, np.abs(d))
    gs, a_s, neg = g_sel[order], np.abs(d)[order], d[order] < 0
    m = np.bincount(gs, minlength=n_groups)
    first = np.r_[0, np.cumsum(m)[:-1]]
    pos = np.arange(len(gs)) - first[gs]
    new_run = np.r_[True, (gs[1:] != gs[:-1]) | (a_s[1:] != a_s[:-1])]
    run_at = np.flatnonzero(new_run)
    run_len = np.diff(np.r_[run_at, len(gs)])
    run_start = pos[run_at]
    ranks = ((2 * run_start + run_len + 1) / 2.0)[np.cumsum(new_run) - 1]
    ties = np.bincount(gs[run_at], weights=(run_len**3 - run_len).astype(np.float64), minlength=n_groups)
    tested = np.flatnonzero(m > 0)
    mt = m[tested]
    mean = mt * (mt + 1) / 4.0
    var = mt * (mt + 1) * (2 * mt + 1) / 24.0 - ties[tested] / 48.0
    ok = var > 0
    for target, negative in ((out, neg), (out_above, ~neg)):
        w_minus = np.bincount(gs, weights=np.where(negative, ranks, 0.0), minlength=n_groups)
        z = (w_minus[tested][ok] - mean[ok] - 0.5) / np.sqrt(var[ok])
        target[tested[ok]] = [1.0 - 0.5 * math.erfc(v / math.sqrt(2.0)) for v in z.tolist()]
    return out, out_above


@lru_cache(maxsize=65536)
def _cell_edges(cell: int) -> tuple[tuple[float, float, float], ...]:
    """Per edge of a cell: unit normal (east, north) and the distance of the edge from the centre (m)."""
    lon0, lat0 = cell_center(cell)
    ring = [
        ((lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)), (lat - lat0) * 110_574.0)
        for lat, lon in h3.cell_to_boundary(cell_str(cell))
    ]
    edges = []
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        nx, ny = y2 - y1, -(x2 - x1)
        norm = math.hypot(nx, ny)
        nx, ny = nx / norm, ny / norm
        d = x1 * nx + y1 * ny
        if d < 0:
            nx, ny, d = -nx, -ny, -d
        edges.append((nx, ny, d))
    while len(edges) < 6:  # pentagons: repeat an edge to keep one array shape
        edges.append(edges[0])
    return tuple(edges)


def _edge_distance_m(
    cells: npt.NDArray[np.uint64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    *,
    cell_codes: tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]] | None = None,
) -> npt.NDArray[np.float64]:
    """Metres from each reading's reported position to its cell's border (negative: outside).

    ``cell_codes``: ``np.unique(cells, return_inverse=True)`` when the caller has it already.
    """
    uniq, inv = np.unique(cells, return_inverse=True) if cell_codes is None else cell_codes
    centres = np.array([cell_center(int(c)) for c in uniq.tolist()], dtype=np.float64).reshape(-1, 2)
    edges = np.array([_cell_edges(int(c)) for c in uniq.tolist()], dtype=np.float64).reshape(-1, 6, 3)
    inv = inv.ravel()
    c_lon, c_lat = centres[inv, 0], centres[inv, 1]
    dx = (lon - c_lon) * 111_320.0 * np.cos(np.radians(c_lat))
    dy = (lat - c_lat) * 110_574.0
    # One edge at a time (the same arithmetic per edge as one (readings, 6) array, less memory).
    out: npt.NDArray[np.float64] = np.full(len(inv), np.inf)
    for k in range(6):
        nx, ny, d = (np.ascontiguousarray(edges[:, k, j])[inv] for j in range(3))
        np.minimum(out, d - (nx * dx + ny * dy), out=out)
    return out


def _codes(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes of ``values`` (as strings) numbered in sorted order, and the sorted strings."""
    return string_codes(values)


def assess_cells(
    samples: CellSamples,
    *,
    profile: SignalProfile = DEFAULT_PROFILE,
    options: DetectOptions = DetectOptions(),
) -> CellAssessment:
    """The state of every (park, cell, operator, technology) that has readings (module docstring).

    Technologies without thresholds in ``profile`` are left out.
    """
    if len(samples) == 0:
        return CellAssessment()
    tech_c, tech_names = string_codes(samples.tech)
    known = np.array([t in profile.techs for t in tech_names], dtype=bool)[tech_c]
    if not known.all():
        samples = samples.take(known)
        tech_c = tech_c[known]
        if len(samples) == 0:
            return CellAssessment()
    rsrp = samples.rsrp_dbm.astype(np.float64).copy()
    no_service = rsrp <= NO_SERVICE_RSRP_DBM
    # Series "operator\x1ftech" numbered in sorted order, from the codes of the two columns.
    op_c, op_names = string_codes(samples.operator)
    present = np.bincount(op_c * len(tech_names) + tech_c, minlength=len(op_names) * len(tech_names)) > 0
    pair_ids = np.flatnonzero(present)
    pair_c = (np.cumsum(present) - 1)[op_c * len(tech_names) + tech_c]
    pair_names = [
        f"{op_names[p // len(tech_names)]}\x1f{tech_names[p % len(tech_names)]}" for p in pair_ids.tolist()
    ]
    series = sorted(set(pair_names))
    series_of_pair = np.array([series.index(name) for name in pair_names], dtype=np.int64)
    series_c = series_of_pair[pair_c]
    dev_c, devs = string_codes(samples.dev, none_as="")
    h3_ids, h3_c = np.unique(samples.h3, return_inverse=True)
    h3_c = h3_c.ravel().astype(np.int64)
    offsets: list[DeviceOffset] = []
    reference = dict(options.reference_offsets_db)
    if options.calibrate:
        for s_i, name in enumerate(series):
            operator, tech = name.split("\x1f")
            sel = np.flatnonzero((series_c == s_i) & ~no_service)
            # Devices numbered in code order, cells by the codes of all rows (ascending cell, as
            # dense codes of the series' own cells would be).
            present = np.bincount(dev_c[sel], minlength=len(devs)) > 0
            local = np.flatnonzero(present)
            d_codes = (np.cumsum(present) - 1)[dev_c[sel]]
            anchors = {j: reference[devs[d]] for j, d in enumerate(local.tolist()) if devs[d] in reference}
            off, shared = estimate_offsets(
                h3_c[sel],
                d_codes.astype(np.int64),
                rsrp[sel],
                len(local),
                known=anchors,
            )
            for j, d in enumerate(local.tolist()):
                if shared[j] > 0 or j in anchors:
                    offsets.append(
                        DeviceOffset(
                            operator=operator,
                            tech=tech,
                            dev=devs[d],
                            offset_db=float(off[j]),
                            shared_cells=int(shared[j]),
                            reference=j in anchors,
                        )
                    )
            rsrp[sel] -= off[d_codes.ravel()]
    inside = (
        _edge_distance_m(samples.h3, samples.lat, samples.lon, cell_codes=(h3_ids, h3_c))
        > options.gnss_error_m
    )
    # Readings without a position are binned by the gateway's fixed place: keep them.
    inside |= np.isnan(samples.lat) | np.isnan(samples.lon)
    park_c, parks = string_codes(samples.park)
    # Groups numbered in (park, series, cell) order.
    g_of, n_groups = dense_ids((park_c * len(series) + series_c) * len(h3_ids) + h3_c)
    first_row = np.empty(n_groups, dtype=np.int64)
    first_row[g_of] = np.arange(len(g_of))
    g_series = series_c[first_row]
    tech_of = [name.split("\x1f")[1] for name in series]
    thresholds = np.array([profile.thresholds(t).dead_threshold_dbm(options.max_class) for t in tech_of])
    floors = np.array([profile.thresholds(t).sinr_floor_db for t in tech_of])
    threshold = thresholds[series_c]
    level = np.where(no_service, NO_SERVICE_RSRP_DBM, rsrp)
    used = np.flatnonzero(inside)
    g_used = g_of[used]
    n = np.bincount(g_used, minlength=n_groups)
    k = np.bincount(g_used, weights=(level[used] <= threshold[used]).astype(np.float64), minlength=n_groups)
    ns_used = np.bincount(g_used, weights=no_service[used].astype(np.float64), minlength=n_groups)
    # Dead: the median below the threshold; covered: above it (the same ranks, one sort).
    dead_conf, covered_conf = _grouped_median_confidences(g_used, level[used] - threshold[used], n_groups)
    if options.area_weighted:
        dead_conf, covered_conf = _area_weighted(
            dead_conf,
            covered_conf,
            options.confidence,
            g_of,
            park_c * len(series) + series_c,
            samples,
            level,
            threshold,
        )
    sinr = samples.sinr_db.astype(np.float64)
    s_sel = used[~np.isnan(sinr[used]) & ~no_service[used]]
    interf_conf = grouped_median_below_confidence(
        g_of[s_sel], sinr[s_sel] - floors[series_c[s_sel]] - 1e-9, n_groups
    )
    is_dead = dead_conf >= options.confidence
    is_interf = ~is_dead & (interf_conf >= options.confidence)
    is_covered = ~is_dead & ~is_interf & (covered_conf >= options.confidence)
    state = np.full(n_groups, "uncertain", dtype=object)
    state[is_covered], state[is_interf], state[is_dead] = "covered", "interference", "dead"
    conf = np.where(is_covered, covered_conf, np.where(is_interf, interf_conf, dead_conf))
    cause = np.full(n_groups, None, dtype=object)
    cause[is_interf] = "interference"
    cause[is_dead] = np.where(2 * ns_used[is_dead] > n[is_dead], "no_service", "coverage")
    # Order statistics of all readings (calibrated, no_service as -140) and of the SINR readings.
    by_level = group_value_order(g_of, level)
    sorted_level = level[by_level]
    count = np.bincount(g_of, minlength=n_groups)
    lo = np.r_[0, np.cumsum(count)[:-1]]
    median = (sorted_level[lo + (count - 1) // 2] + sorted_level[lo + count // 2]) / 2.0
    r10 = np.maximum(1, np.floor(count * 0.1 + 0.5).astype(np.int64))
    p10 = sorted_level[lo + r10 - 1]
    by_sinr = group_value_order(g_of, sinr)  # NaN sorts last within each group
    sorted_sinr = sinr[by_sinr]
    s_count = np.bincount(g_of, weights=(~np.isnan(sinr)).astype(np.float64), minlength=n_groups).astype(
        np.int64
    )
    s_mid = np.minimum(lo + np.maximum(s_count - 1, 0) // 2, len(sinr) - 1)
    s_mid2 = np.minimum(lo + s_count // 2, len(sinr) - 1)
    sinr_median = np.where(s_count > 0, (sorted_sinr[s_mid] + sorted_sinr[s_mid2]) / 2.0, math.nan)
    ts = samples.ts_ms.astype(np.int64)
    first_ms = np.full(n_groups, np.iinfo(np.int64).max)
    last_ms = np.full(n_groups, np.iinfo(np.int64).min)
    np.minimum.at(first_ms, g_of, ts)
    np.maximum.at(last_ms, g_of, ts)
    named = np.array([d != "" for d in devs], dtype=bool)[dev_c]
    devices = distinct_count(g_of[named], dev_c[named], n_groups)
    parks_arr = np.array([*parks, None], dtype=object)[:-1]
    series_op = np.array([*(name.split("\x1f")[0] for name in series), None], dtype=object)[:-1]
    series_tech = np.array([*tech_of, None], dtype=object)[:-1]
    cols: dict[str, Any] = {
        "park": parks_arr[park_c[first_row]],
        "h3": samples.h3[first_row].astype(np.uint64),
        "operator": series_op[g_series],
        "tech": series_tech[g_series],
        "state": state,
        "cause": cause,
        "confidence": np.array([round(v, 4) for v in conf.tolist()]),
        "samples": count.astype(np.int64),
        "tested": n.astype(np.int64),
        "below": k.astype(np.int64),
        "no_service": np.bincount(g_of, weights=no_service.astype(np.float64), minlength=n_groups).astype(
            np.int64
        ),
        "devices": devices.astype(np.int64),
        "threshold_dbm": thresholds[g_series].astype(np.float64),
        "rsrp_median_dbm": np.array([round(v, 2) for v in median.tolist()]),
        "rsrp_p10_dbm": np.array([round(v, 2) for v in p10.tolist()]),
        "sinr_median_db": np.array([round(v, 2) for v in sinr_median.tolist()]),
        "first_ms": first_ms,
        "last_ms": last_ms,
    }
    return CellAssessment(**cols, offsets=tuple(offsets))


def _area_weighted(
    dead_conf: npt.NDArray[np.float64],
    covered_conf: npt.NDArray[np.float64],
    confidence: float,
    g_of: npt.NDArray[np.int64],
    layer: npt.NDArray[np.int64],
    samples: CellSamples,
    level: npt.NDArray[np.float64],
    threshold: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The confidences with the undecided groups' replaced by the area-weighted test's."""
    undecided = np.flatnonzero((dead_conf < confidence) & (covered_conf < confidence))
    if len(undecided) == 0:
        return dead_conf, covered_conf
    first = np.full(len(dead_conf), -1, dtype=np.int64)
    first[g_of[::-1]] = np.arange(len(g_of))[::-1]
    rows = first[undecided]
    area = area_dead_confidence(
        layer=layer,
        cell=samples.h3,
        lon=samples.lon,
        lat=samples.lat,
        level_dbm=level,
        threshold_dbm=threshold,
        targets=list(zip(layer[rows].tolist(), samples.h3[rows].tolist(), strict=True)),
    )
    ok = ~np.isnan(area)
    dead_conf, covered_conf = dead_conf.copy(), covered_conf.copy()
    dead_conf[undecided[ok]] = area[ok]
    covered_conf[undecided[ok]] = 1.0 - area[ok]
    return dead_conf, covered_conf


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadZone:
    """One connected zone of dead (or interference) cells of one park, operator and technology."""

    kind: ZoneKind
    park: str
    operator: str
    tech: str
    cells: tuple[int, ...]
    cause: str
    confidence: float
    area_m2: float
    worst_rsrp_dbm: float | None
    median_rsrp_dbm: float | None
    median_sinr_db: float | None
    centroid_lon: float
    centroid_lat: float
    samples: int
    devices: int
    first_seen_ms: int
    last_seen_ms: int

    @property
    def id(self) -> str:
        return f"{self.park}:{self.operator}:{self.tech}:{cell_str(min(self.cells))}"

    def name(self, rank: int) -> str:
        """Readable name: park · operator · tech · rank · area."""
        return f"{self.park} · {self.operator} · {self.tech} · #{rank} · {self.area_m2 / 1e4:.2f} ha"

    def geometry(self) -> dict[str, Any]:
        """GeoJSON (Multi)Polygon of the merged cells."""
        geo: dict[str, Any] = h3.cells_to_geo([cell_str(c) for c in self.cells])
        return geo

    def feature(self, rank: int) -> dict[str, Any]:
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": self.geometry(),
            "properties": {
                "rank": rank,
                "name": self.name(rank),
                "kind": self.kind,
                "park": self.park,
                "operators": [self.operator],
                "tech": self.tech,
                "cause": self.cause,
                "confidence": round(self.confidence, 4),
                "area_m2": round(self.area_m2, 1),
                "cell_count": len(self.cells),
                "cells": [cell_str(c) for c in self.cells],
                "worst_rsrp_dbm": self.worst_rsrp_dbm,
                "median_rsrp_dbm": self.median_rsrp_dbm,
                "median_sinr_db": self.median_sinr_db,
                "centroid": [round(self.centroid_lon, 6), round(self.centroid_lat, 6)],
                "lon": round(self.centroid_lon, 6),
                "lat": round(self.centroid_lat, 6),
                "samples": self.samples,
                "devices": self.devices,
                "first_seen_ms": self.first_seen_ms,
                "last_seen_ms": self.last_seen_ms,
            },
        }


def components(cells: set[int]) -> list[list[int]]:
    """Edge-connected components of a set of same-resolution H3 cells (union-find)."""
    parent = {c: c for c in cells}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for c in cells:
        for n in h3.grid_ring(cell_str(c), 1):
            ni = h3.str_to_int(n)
            if ni in parent:
                ra, rb = find(c), find(ni)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for c in cells:
        groups[find(c)].append(c)
    return [sorted(g) for g in groups.values()]


def _weighted_median(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float | None:
    ok = ~np.isnan(values)
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cum = np.cumsum(w)
    return round(float(v[np.searchsorted(cum, cum[-1] / 2.0)]), 2)


def find_zones(cells: CellAssessment, *, kind: ZoneKind = "dead", min_cells: int = 1) -> list[DeadZone]:
    """Zones of ``kind`` cells of every (park, operator, technology) group, largest first."""
    hit = np.flatnonzero(cells.state == kind)
    idx_by_group: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in hit.tolist():
        idx_by_group[(str(cells.park[i]), str(cells.operator[i]), str(cells.tech[i]))].append(i)
    zones: list[DeadZone] = []
    for (park, operator, tech), idx in idx_by_group.items():
        row_of = {int(cells.h3[i]): i for i in idx}
        for comp in components(set(row_of)):
            if len(comp) < min_cells:
                continue
            rows = np.array([row_of[c] for c in comp])
            areas = np.array([cell_area_m2(c) for c in comp])
            centers = np.array([cell_center(c) for c in comp])
            weights = cells.samples[rows].astype(np.float64)
            if kind == "dead":
                ns = int(cells.no_service[rows].sum())
                cause = "no_service" if 2 * ns > int(cells.samples[rows].sum()) else "coverage"
            else:
                cause = "interference"
            sinr = _weighted_median(cells.sinr_median_db[rows], weights)
            zones.append(
                DeadZone(
                    kind=kind,
                    park=park,
                    operator=operator,
                    tech=tech,
                    cells=tuple(comp),
                    cause=cause,
                    confidence=float(cells.confidence[rows].min()),
                    area_m2=float(areas.sum()),
                    worst_rsrp_dbm=round(float(np.nanmin(cells.rsrp_p10_dbm[rows])), 2),
                    median_rsrp_dbm=_weighted_median(cells.rsrp_median_dbm[rows], weights),
                    median_sinr_db=sinr,
                    centroid_lon=float(np.average(centers[:, 0], weights=areas)),
                    centroid_lat=float(np.average(centers[:, 1], weights=areas)),
                    samples=int(cells.samples[rows].sum()),
                    devices=int(cells.devices[rows].max()),
                    first_seen_ms=int(cells.first_ms[rows].min()),
                    last_seen_ms=int(cells.last_ms[rows].max()),
                )
            )
    zones.sort(key=lambda z: (-z.area_m2, z.park, z.operator, z.tech, min(z.cells)))
    return zones


def area_scores(detected: set[int], truth: set[int], *, surveyed: set[int] | None = None) -> dict[str, float]:
    """Precision, recall and IoU of detected dead-zone area against the true dead-zone area.

    With ``surveyed``, the truth is restricted to cells that were sampled: a detector cannot see
    a hole nobody drove through (that is what survey gaps report).
    """
    if surveyed is not None:
        truth = truth & surveyed
    inter = sum(cell_area_m2(c) for c in detected & truth)
    det = sum(cell_area_m2(c) for c in detected)
    tru = sum(cell_area_m2(c) for c in truth)
    union = det + tru - inter
    return {
        "precision": inter / det if det else 1.0,
        "recall": inter / tru if tru else 1.0,
        "iou": inter / union if union else 1.0,
    }
