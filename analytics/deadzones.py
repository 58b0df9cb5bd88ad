"""Dead zones: connected components of H3 cells at or below a chosen signal class.

Per (park, operator, technology), every cell with enough samples (``samples >= min_samples``)
whose class (:func:`analytics.coverage.cell_classes`) is at or below ``max_class`` is "dead";
dead cells that share an edge form one zone. A zone is reported as the merged polygon of its
cells (``h3.cells_to_geo``), its area in m² (sum of cell areas), worst RSRP (lowest cell p10,
the cell median where a p10 is missing), sample-weighted median of cell medians, area-weighted
centroid, operators affected, first and last seen. Zones are ranked by area, largest first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import numpy.typing as npt

from analytics.coverage import cell_area_m2, cell_str
from storage.query import CellStats


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadZone:
    """One connected dead zone."""

    park: str
    operator: str
    tech: str
    cells: tuple[int, ...]
    area_m2: float
    worst_rsrp_dbm: float | None
    median_rsrp_dbm: float | None
    centroid_lon: float
    centroid_lat: float
    samples: int
    first_seen_ms: int
    last_seen_ms: int

    @property
    def id(self) -> str:
        return f"{self.park}:{self.operator}:{self.tech}:{cell_str(min(self.cells))}"

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
                "park": self.park,
                "operators": [self.operator],
                "tech": self.tech,
                "area_m2": round(self.area_m2, 1),
                "cell_count": len(self.cells),
                "worst_rsrp_dbm": self.worst_rsrp_dbm,
                "median_rsrp_dbm": self.median_rsrp_dbm,
                "centroid": [round(self.centroid_lon, 6), round(self.centroid_lat, 6)],
                "samples": self.samples,
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


def find_dead_zones(
    stats: CellStats,
    classes: npt.NDArray[np.int8],
    *,
    max_class: int,
    min_samples: int,
    min_cells: int = 1,
) -> list[DeadZone]:
    """Dead zones of every (park, operator, technology) group in ``stats``, largest first."""
    dead = (classes >= 0) & (classes <= max_class) & (stats.samples >= min_samples)
    idx_by_group: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in np.flatnonzero(dead):
        idx_by_group[(str(stats.park[i]), str(stats.operator[i]), str(stats.tech[i]))].append(int(i))
    zones: list[DeadZone] = []
    for (park, operator, tech), idx in idx_by_group.items():
        row_of = {int(stats.h3[i]): i for i in idx}
        for comp in components(set(row_of)):
            if len(comp) < min_cells:
                continue
            rows = np.array([row_of[c] for c in comp])
            areas = np.array([cell_area_m2(c) for c in comp])
            centers = np.array([h3.cell_to_latlng(cell_str(c)) for c in comp])
            worst = np.where(
                np.isnan(stats.rsrp_p10_dbm[rows]), stats.rsrp_median_dbm[rows], stats.rsrp_p10_dbm[rows]
            )
            zones.append(
                DeadZone(
                    park=park,
                    operator=operator,
                    tech=tech,
                    cells=tuple(comp),
                    area_m2=float(areas.sum()),
                    worst_rsrp_dbm=None if np.isnan(worst).all() else round(float(np.nanmin(worst)), 2),
                    median_rsrp_dbm=_weighted_median(
                        stats.rsrp_median_dbm[rows], stats.samples[rows].astype(np.float64)
                    ),
                    centroid_lat=float(np.average(centers[:, 0], weights=areas)),
                    centroid_lon=float(np.average(centers[:, 1], weights=areas)),
                    samples=int(stats.samples[rows].sum()),
                    first_seen_ms=int(stats.first_ms[rows].min()),
                    last_seen_ms=int(stats.last_ms[rows].max()),
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
