"""Coverage grid on H3: per-cell classes, GeoJSON features, park cells, survey gaps and summaries.

A cell's map class comes from its median RSRP through the signal profile of its technology
(:func:`analytics.signal.classify`): a coverage class, SINR does not lower it (bad SINR with good
RSRP is an interference zone, :mod:`analytics.deadzones`). Whether a cell is dead is not its map
class but the confidence test of :mod:`analytics.deadzones`; a cell with fewer than ``min_samples`` samples is
``insufficient`` and is neither counted as measured nor as dead. Cells are H3 indexes as
unsigned 64-bit integers; the h3 library works on hex strings at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import h3
import numpy as np
import numpy.typing as npt

from analytics.signal import CLASS_NAMES, DEFAULT_PROFILE, UNKNOWN, SignalProfile, class_name, classify
from storage.query import CellStats


def cell_classes(stats: CellStats, *, profile: SignalProfile = DEFAULT_PROFILE) -> npt.NDArray[np.int8]:
    """Coverage class index per row of ``stats`` from its median RSRP."""
    out = np.full(len(stats), UNKNOWN, dtype=np.int8)
    for tech in np.unique(stats.tech.astype(str)) if len(stats) else ():
        mask = stats.tech == tech
        try:
            out[mask] = classify(stats.rsrp_median_dbm[mask], tech=str(tech), profile=profile)
        except ValueError:
            continue  # a technology without thresholds stays unknown
    return out


def cell_str(cell: int) -> str:
    """H3 hex string of an integer cell."""
    return str(h3.int_to_str(int(cell)))


@lru_cache(maxsize=65536)
def cell_area_m2(cell: int) -> float:
    """Area of an H3 cell in square metres."""
    return float(h3.cell_area(h3.int_to_str(cell), unit="m^2"))


@lru_cache(maxsize=65536)
def cell_polygon(cell: int) -> tuple[tuple[float, float], ...]:
    """Closed GeoJSON ring (lon, lat) of a cell."""
    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    return (*ring, ring[0])


@lru_cache(maxsize=65536)
def cell_center(cell: int) -> tuple[float, float]:
    """``(lon, lat)`` of a cell's centre, rounded to 1e-6 degrees."""
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    return (round(lon, 6), round(lat, 6))


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 2)


def cell_features(
    stats: CellStats, classes: npt.NDArray[np.int8], *, min_samples: int
) -> list[dict[str, Any]]:
    """GeoJSON Features, one per (park, cell, operator, technology) row."""
    # Column lists, not row dicts: this runs for every cell of every coverage answer.
    cells = stats.h3.tolist()
    samples = stats.samples.tolist()
    medians = [
        [_num(x) for x in col.tolist()]
        for col in (
            stats.rsrp_p10_dbm,
            stats.rsrp_median_dbm,
            stats.rsrq_median_db,
            stats.sinr_p10_db,
            stats.sinr_median_db,
        )
    ]
    names = [class_name(int(c)) for c in classes.tolist()]
    feats: list[dict[str, Any]] = []
    for i, (cell, park, operator, tech, devices, first_ms, last_ms) in enumerate(
        zip(
            cells,
            stats.park.tolist(),
            stats.operator.tolist(),
            stats.tech.tolist(),
            stats.devices.tolist(),
            stats.first_ms.tolist(),
            stats.last_ms.tolist(),
            strict=True,
        )
    ):
        hex_id = cell_str(cell)
        feats.append(
            {
                "type": "Feature",
                "id": f"{hex_id}:{operator}:{tech}",
                "geometry": {"type": "Polygon", "coordinates": [cell_polygon(cell)]},
                "properties": {
                    "park": park,
                    "h3": hex_id,
                    "operator": operator,
                    "tech": tech,
                    "samples": samples[i],
                    "devices": devices,
                    "rsrp_p10_dbm": medians[0][i],
                    "rsrp_median_dbm": medians[1][i],
                    "rsrq_median_db": medians[2][i],
                    "sinr_p10_db": medians[3][i],
                    "sinr_median_db": medians[4][i],
                    "first_seen_ms": first_ms,
                    "last_seen_ms": last_ms,
                    "class": names[i],
                    "insufficient": samples[i] < min_samples,
                    "center": list(cell_center(cell)),
                },
            }
        )
    return feats


def park_cells(boundary: Sequence[Sequence[float]], resolution: int) -> frozenset[int]:
    """H3 cells (centres inside) of a park boundary ring given as ``[[lon, lat], ...]``."""
    return _park_cells(tuple((float(p[0]), float(p[1])) for p in boundary), resolution)


@lru_cache(maxsize=256)
def _park_cells(ring: tuple[tuple[float, float], ...], resolution: int) -> frozenset[int]:
    shape = h3.LatLngPoly([(lat, lon) for lon, lat in ring])
    return frozenset(h3.str_to_int(c) for c in h3.h3shape_to_cells(shape, resolution))


def survey_gaps(inside: Iterable[int], measured: Iterable[int]) -> list[int]:
    """Cells of ``inside`` (a park) that have no sample in ``measured``, sorted."""
    return sorted(set(inside) - set(measured))


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageSummary:
    """Coverage of one (park, operator, technology) group in one window."""

    park: str
    operator: str
    tech: str
    measured_cells: int
    measured_area_m2: float
    area_share_by_class: dict[str, float]
    park_area_m2: float | None
    park_area_measured_share: float | None
    dead_zones: int
    dead_zone_area_m2: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "park": self.park,
            "operator": self.operator,
            "tech": self.tech,
            "measured_cells": self.measured_cells,
            "measured_area_m2": round(self.measured_area_m2, 1),
            "area_share_by_class": {k: round(v, 4) for k, v in self.area_share_by_class.items()},
            "park_area_m2": None if self.park_area_m2 is None else round(self.park_area_m2, 1),
            "park_area_measured_share": None
            if self.park_area_measured_share is None
            else round(self.park_area_measured_share, 4),
            "dead_zones": self.dead_zones,
            "dead_zone_area_m2": round(self.dead_zone_area_m2, 1),
        }


def summarize(
    *,
    park: str,
    operator: str,
    tech: str,
    cells: npt.NDArray[np.uint64],
    classes: npt.NDArray[np.int8],
    sufficient: npt.NDArray[np.bool_],
    dead_zone_areas_m2: Sequence[float],
    park_cell_set: frozenset[int] | None,
) -> CoverageSummary:
    """Share of measured area by class, park area measured and dead zones of one group.

    Only cells with enough samples count as measured; shares are by cell area.
    """
    keep = sufficient & (classes != UNKNOWN)
    cells_k = [int(c) for c in cells[keep]]
    areas = np.array([cell_area_m2(c) for c in cells_k], dtype=np.float64)
    total = float(areas.sum())
    shares = {
        name: (float(areas[classes[keep] == i].sum()) / total if total > 0 else 0.0)
        for i, name in enumerate(CLASS_NAMES)
    }
    park_area = park_share = None
    if park_cell_set is not None:
        park_area = float(sum(cell_area_m2(c) for c in park_cell_set))
        inside = sum(cell_area_m2(c) for c in set(cells_k) & park_cell_set)
        park_share = inside / park_area if park_area > 0 else None
    return CoverageSummary(
        park=park,
        operator=operator,
        tech=tech,
        measured_cells=len(cells_k),
        measured_area_m2=total,
        area_share_by_class=shares,
        park_area_m2=park_area,
        park_area_measured_share=park_share,
        dead_zones=len(dead_zone_areas_m2),
        dead_zone_area_m2=float(sum(dead_zone_areas_m2)),
    )


def summary_change(current: CoverageSummary, previous: CoverageSummary | None) -> dict[str, Any] | None:
    """Differences ``current - previous`` of the headline figures; None when nothing was measured before."""
    if previous is None:
        return None
    return {
        "measured_area_m2": round(current.measured_area_m2 - previous.measured_area_m2, 1),
        "dead_zones": current.dead_zones - previous.dead_zones,
        "dead_zone_area_m2": round(current.dead_zone_area_m2 - previous.dead_zone_area_m2, 1),
        "area_share_by_class": {
            k: round(current.area_share_by_class[k] - previous.area_share_by_class.get(k, 0.0), 4)
            for k in current.area_share_by_class
        },
    }
