"""Dead zones (coverage holes) and interference zones: a confidence test per H3 cell, then zones.

Per (park, operator, technology) and H3 cell, :func:`assess_cells` reads the raw readings:

1. **Calibration**: per-device offsets (:mod:`analytics.calibration`) are estimated from cells
   several devices measured and subtracted from every measured RSRP.
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
4. **Interference**: a cell that is not dead, whose SINR readings show the same way that their
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
from analytics.coverage import cell_area_m2, cell_center, cell_str
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
    """

    confidence: float = 0.9
    max_class: str = "none"
    gnss_error_m: float = 10.0
    calibrate: bool = True

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
    cells: npt.NDArray[np.uint64], lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Metres from each reading's reported position to its cell's border (negative: outside)."""
    uniq, inv = np.unique(cells, return_inverse=True)
    centres = np.array([cell_center(int(c)) for c in uniq.tolist()], dtype=np.float64).reshape(-1, 2)
    edges = np.array([_cell_edges(int(c)) for c in uniq.tolist()], dtype=np.float64).reshape(-1, 6, 3)
    inv = inv.ravel()
    c_lon, c_lat = centres[inv, 0], centres[inv, 1]
    dx = (lon - c_lon) * 111_320.0 * np.cos(np.radians(c_lat))
    dy = (lat - c_lat) * 110_574.0
    e = edges[inv]
    out: npt.NDArray[np.float64] = (e[:, :, 2] - (e[:, :, 0] * dx[:, None] + e[:, :, 1] * dy[:, None])).min(
        axis=1
    )
    return out


def _codes(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], list[Any]]:
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    return inv.ravel().astype(np.int64), uniq.tolist()


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
    known = np.array([t in profile.techs for t in samples.tech.tolist()], dtype=bool)
    if not known.all():
        samples = samples.take(known)
        if len(samples) == 0:
            return CellAssessment()
    rsrp = samples.rsrp_dbm.astype(np.float64).copy()
    no_service = rsrp <= NO_SERVICE_RSRP_DBM
    series_c, series = _codes(
        np.array([f"{o}\x1f{t}" for o, t in zip(samples.operator, samples.tech, strict=True)])
    )
    dev_c, devs = _codes(np.array(["" if d is None else d for d in samples.dev.tolist()], dtype=object))
    offsets: list[DeviceOffset] = []
    if options.calibrate:
        for s_i, name in enumerate(series):
            operator, tech = name.split("\x1f")
            sel = np.flatnonzero((series_c == s_i) & ~no_service)
            local, d_codes = np.unique(dev_c[sel], return_inverse=True)
            c_codes = np.unique(samples.h3[sel], return_inverse=True)[1].ravel()
            off, shared = estimate_offsets(
                c_codes.astype(np.int64), d_codes.ravel().astype(np.int64), rsrp[sel], len(local)
            )
            for j, d in enumerate(local.tolist()):
                if shared[j] > 0:
                    offsets.append(
                        DeviceOffset(
                            operator=operator,
                            tech=tech,
                            dev=devs[d],
                            offset_db=float(off[j]),
                            shared_cells=int(shared[j]),
                        )
                    )
            rsrp[sel] -= off[d_codes.ravel()]
    inside = _edge_distance_m(samples.h3, samples.lat, samples.lon) > options.gnss_error_m
    # Readings without a position are binned by the gateway's fixed place: keep them.
    inside |= np.isnan(samples.lat) | np.isnan(samples.lon)
    park_c, parks = _codes(samples.park)
    group_key = np.stack([park_c, series_c]).T
    order = np.lexsort((samples.h3, series_c, park_c))
    g_sorted = np.c_[group_key[order], samples.h3[order].astype(np.int64).view(np.int64)]
    new = np.r_[True, (g_sorted[1:] != g_sorted[:-1]).any(axis=1)]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(order)]
    n_groups = len(starts)
    out: dict[str, list[Any]] = defaultdict(list)
    sinr = samples.sinr_db.astype(np.float64)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = order[a:b]
        i0 = rows[0]
        operator, tech = series[series_c[i0]].split("\x1f")
        t = profile.thresholds(tech)
        threshold = t.dead_threshold_dbm(options.max_class)
        used = rows[inside[rows]]
        n = len(used)
        level = np.where(no_service[used], NO_SERVICE_RSRP_DBM, rsrp[used])
        k = int((level <= threshold).sum())
        dead_conf = median_below_confidence(level - threshold)
        covered_conf = median_below_confidence(threshold - level)
        s_used = sinr[used][~np.isnan(sinr[used]) & ~no_service[used]]
        interf_conf = median_below_confidence(s_used - t.sinr_floor_db - 1e-9)
        ns = int(no_service[rows].sum())
        state: State
        if dead_conf >= options.confidence:
            state, conf = "dead", dead_conf
            cause: str | None = "no_service" if 2 * int(no_service[used].sum()) > n else "coverage"
        elif interf_conf >= options.confidence:
            state, conf, cause = "interference", interf_conf, "interference"
        elif covered_conf >= options.confidence:
            state, conf, cause = "covered", covered_conf, None
        else:
            state, conf, cause = "uncertain", dead_conf, None
        vals = np.where(no_service[rows], NO_SERVICE_RSRP_DBM, rsrp[rows])
        srt = np.sort(vals)
        r10 = max(1, math.floor(len(srt) * 0.1 + 0.5))
        s_all = sinr[rows][~np.isnan(sinr[rows])]
        out["park"].append(parks[park_c[i0]])
        out["h3"].append(int(samples.h3[i0]))
        out["operator"].append(operator)
        out["tech"].append(tech)
        out["state"].append(state)
        out["cause"].append(cause)
        out["confidence"].append(round(conf, 4))
        out["samples"].append(len(rows))
        out["tested"].append(n)
        out["below"].append(k)
        out["no_service"].append(ns)
        out["devices"].append(len({devs[d] for d in dev_c[rows].tolist()} - {""}))
        out["threshold_dbm"].append(threshold)
        out["rsrp_median_dbm"].append(round(float(np.median(srt)), 2))
        out["rsrp_p10_dbm"].append(round(float(srt[r10 - 1]), 2))
        out["sinr_median_db"].append(round(float(np.median(s_all)), 2) if len(s_all) else math.nan)
        out["first_ms"].append(int(samples.ts_ms[rows].min()))
        out["last_ms"].append(int(samples.ts_ms[rows].max()))
    del n_groups
    obj = {"park", "operator", "tech", "state", "cause"}
    ints = {"samples", "tested", "below", "no_service", "devices", "first_ms", "last_ms"}
    cols: dict[str, Any] = {}
    for name, values in out.items():
        if name in obj:
            cols[name] = np.array([*values, None], dtype=object)[:-1]
        elif name == "h3":
            cols[name] = np.array(values, dtype=np.uint64)
        elif name in ints:
            cols[name] = np.array(values, dtype=np.int64)
        else:
            cols[name] = np.array(values, dtype=np.float64)
    return CellAssessment(**cols, offsets=tuple(offsets))


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
