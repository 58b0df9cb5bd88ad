"""Ground truth of a scenario: the true median RSRP per H3 cell and the true coverage holes.

The truth is the radio model's **noise-free** field: per cell, the median of the serving RSRP
over the cell's resolution-``resolution + 2`` children (49 points about 9 m apart at resolution
10), with no fading, no device offset and no position error. A cell is a coverage hole (dead)
when that true median is at or below the technology's coverage-hole threshold
(:data:`HOLE_RSRP_DBM`); a point without any cell above -140 dBm counts as -inf. The truth does
not use the platform's classification or dead-zone code (``analytics``): what is scored must not
compute its own yardstick. The thresholds are the same numbers as the default signal profile's
(``analytics.signal``), and a test keeps the two equal.

``ground_truth(scenario)`` evaluates every cell inside the parks' boundaries; :meth:`GroundTruth.score`
compares a detected set of cells with the truth (precision, recall, IoU).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import h3
import numpy as np
import numpy.typing as npt

from firmware_sim.errors import SimError
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import Scenario

HOLE_RSRP_DBM: Final[dict[str, float]] = {"LTE": -115.0, "NR": -115.0}
"""Coverage-hole threshold per technology: a cell whose true median RSRP (LTE) or SS-RSRP (NR)
is at or below it is dead. Source and reasoning: ``docs/coverage.md``."""
TRUTH_VERSION: Final = "noise-free-median-1"
DEFAULT_RESOLUTION: Final = 10
_SUBCELL_STEPS: Final = 2
"""The true median is taken over the children this many resolutions finer (7**2 = 49 points)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadZone:
    """One true dead zone: connected dead cells of one operator and technology."""

    operator: str
    tech: str
    zone: int
    cells: frozenset[str]
    geometry: dict[str, Any]
    area_m2: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """Detection quality of a set of cells against the truth."""

    precision: float
    recall: float
    iou: float
    true_positive: int
    false_positive: int
    false_negative: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthLayer:
    """The truth of one operator and technology over the evaluated cells (arrays in the same order)."""

    operator: str
    tech: str
    cells: npt.NDArray[np.str_]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    rsrp_dbm: npt.NDArray[np.float64]
    """True median RSRP of each cell (-inf where most of the cell has no service)."""
    sinr_db: npt.NDArray[np.float64]
    """True median SINR of each cell (NaN where most of the cell has no service)."""
    threshold_dbm: float
    dead: npt.NDArray[np.bool_]
    dead_cells: frozenset[str]
    dead_zones: list[DeadZone]

    def medians(self) -> dict[str, float]:
        """H3 cell -> true median RSRP."""
        return dict(zip(self.cells.tolist(), self.rsrp_dbm.tolist(), strict=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class GroundTruth:
    """The truth of a scenario at one H3 resolution, per (operator, technology)."""

    scenario: str
    seed: int
    resolution: int
    profile: str
    layers: dict[tuple[str, str], TruthLayer] = field(default_factory=dict)
    operator_names: dict[str, str] = field(default_factory=dict)
    """Operator id -> network name (what ``AT+COPS?`` and so the stored readings carry)."""

    def layer(self, operator: str, tech: str) -> TruthLayer:
        """The layer of one operator (id or network name) and technology (``KeyError`` if not evaluated)."""
        by_name = {name: op_id for op_id, name in self.operator_names.items()}
        return self.layers[(by_name.get(operator, operator), tech)]

    def score(self, operator: str, tech: str, detected: Iterable[str]) -> Score:
        """Precision, recall and IoU of ``detected`` dead cells (any resolution) against the truth.

        Detected cells are brought to the truth's resolution (parents of finer cells, children of
        coarser ones) and restricted to the evaluated area.
        """
        layer = self.layer(operator, tech)
        area = set(layer.cells.tolist())
        found = {c for c in to_resolution(detected, self.resolution) if c in area}
        truth = layer.dead_cells
        tp = len(found & truth)
        fp = len(found - truth)
        fn = len(truth - found)
        union = tp + fp + fn
        return Score(
            precision=tp / (tp + fp) if tp + fp else 1.0,
            recall=tp / (tp + fn) if tp + fn else 1.0,
            iou=tp / union if union else 1.0,
            true_positive=tp,
            false_positive=fp,
            false_negative=fn,
        )


def to_resolution(cells: Iterable[str], resolution: int) -> set[str]:
    """The given H3 cells expressed at ``resolution``."""
    out: set[str] = set()
    for c in cells:
        r = h3.get_resolution(c)
        if r == resolution:
            out.add(c)
        elif r > resolution:
            out.add(h3.cell_to_parent(c, resolution))
        else:
            out.update(h3.cell_to_children(c, resolution))
    return out


def park_cells(scenario: Scenario, resolution: int) -> list[str]:
    """Every H3 cell whose centre lies inside a park boundary, sorted."""
    cells: set[str] = set()
    for park in scenario.parks:
        cells.update(h3.polygon_to_cells(h3.LatLngPoly([(p[0], p[1]) for p in park.boundary]), resolution))
    return sorted(cells)


def connected_components(cells: Iterable[str]) -> list[frozenset[str]]:
    """Groups of cells connected through H3 neighbours, largest first (ties by smallest id)."""
    left = set(cells)
    groups: list[frozenset[str]] = []
    while left:
        seed = min(left)
        left.discard(seed)
        group = {seed}
        stack = [seed]
        while stack:
            for n in h3.grid_ring(stack.pop(), 1):
                if n in left:
                    left.discard(n)
                    group.add(n)
                    stack.append(n)
        groups.append(frozenset(group))
    groups.sort(key=lambda g: (-len(g), min(g)))
    return groups


def _subpoints(cells: list[str]) -> npt.NDArray[np.float64]:
    """``(len(cells), k, 2)`` lat/lon of each cell's children ``_SUBCELL_STEPS`` resolutions finer."""
    if not cells:
        return np.zeros((0, 1, 2))
    res = h3.get_resolution(cells[0]) + _SUBCELL_STEPS
    pts = [[h3.cell_to_latlng(ch) for ch in sorted(h3.cell_to_children(c, res))] for c in cells]
    k = min(len(p) for p in pts)  # pentagons have fewer children; parks hold none in practice
    return np.array([p[:k] for p in pts], dtype=np.float64)


def _layer(
    env: RadioEnvironment, cells: list[str], pts: npt.NDArray[np.float64], operator: str, tech: str
) -> TruthLayer:
    centres = np.array([h3.cell_to_latlng(c) for c in cells], dtype=np.float64).reshape(-1, 2)
    n, k = pts.shape[0], pts.shape[1]
    m = env.measure(pts[:, :, 0].ravel(), pts[:, :, 1].ravel(), operator=operator, tech=tech)
    rsrp = np.where(np.isnan(m.rsrp_dbm), -np.inf, m.rsrp_dbm).reshape(n, k)
    median_dbm = np.median(rsrp, axis=1) if k else np.zeros(0)
    sinr = np.where(np.isnan(m.sinr_db), -np.inf, m.sinr_db).reshape(n, k)
    sinr_median = np.where(np.isfinite(median_dbm), np.median(sinr, axis=1) if k else np.zeros(0), np.nan)
    threshold = HOLE_RSRP_DBM[tech]
    is_dead = median_dbm <= threshold
    cell_arr = np.array(cells, dtype=np.str_)
    dead = frozenset(cell_arr[is_dead].tolist())
    zones = [
        DeadZone(
            operator=operator,
            tech=tech,
            zone=i,
            cells=group,
            geometry=_geometry(group),
            area_m2=float(sum(h3.cell_area(c, "m^2") for c in group)),
        )
        for i, group in enumerate(connected_components(dead))
    ]
    return TruthLayer(
        operator=operator,
        tech=tech,
        cells=cell_arr,
        lat=centres[:, 0],
        lon=centres[:, 1],
        rsrp_dbm=median_dbm,
        sinr_db=sinr_median,
        threshold_dbm=threshold,
        dead=is_dead,
        dead_cells=dead,
        dead_zones=zones,
    )


def _geometry(cells: Iterable[str]) -> dict[str, Any]:
    geo: dict[str, Any] = h3.cells_to_h3shape(list(cells)).__geo_interface__
    lists: dict[str, Any] = json.loads(json.dumps(geo))  # tuples -> lists
    return lists


def ground_truth(
    scenario: Scenario,
    resolution: int = DEFAULT_RESOLUTION,
    operator: str | None = None,
    tech: str | None = None,
    *,
    env: RadioEnvironment | None = None,
) -> GroundTruth:
    """The true classes and dead zones of every (operator, technology), or only the ones asked for.

    Raises:
        SimError: ``operator`` or ``tech`` is not in the scenario.
    """
    env = env or RadioEnvironment(scenario)
    names = {op.name: op.id for op in scenario.operators}
    operator = names.get(operator, operator) if operator is not None else None
    wanted = [(o, t) for o, t in env.layers() if operator in (None, o) and tech in (None, t)]
    if not wanted:
        raise SimError(
            f"no radio layer for operator={operator!r} tech={tech!r}; "
            f"the scenario has {[f'{o}/{t}' for o, t in env.layers()]}"
        )
    cells = park_cells(scenario, resolution)
    pts = _subpoints(cells)
    return GroundTruth(
        scenario=scenario.name,
        seed=scenario.sim.seed,
        resolution=resolution,
        profile=TRUTH_VERSION,
        layers={(o, t): _layer(env, cells, pts, o, t) for o, t in wanted},
        operator_names={op.id: op.name for op in scenario.operators},
    )


def to_geojson(truth: GroundTruth, scenario: Scenario, *, cells: bool = True) -> dict[str, Any]:
    """The truth as a GeoJSON FeatureCollection (see ``docs/firmware-sim.md``)."""
    features: list[dict[str, Any]] = []
    for park in scenario.parks:
        ring = [[p[1], p[0]] for p in park.boundary]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"layer": "park", "park": park.id, "name": park.name},
            }
        )
    for area in scenario.underserved:
        ring = [[p[1], p[0]] for p in area.polygon]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"layer": "underserved", "name": area.name, "note": area.note},
            }
        )
    for layer in truth.layers.values():
        for zone in layer.dead_zones:
            features.append(
                {
                    "type": "Feature",
                    "geometry": zone.geometry,
                    "properties": {
                        "layer": "dead_zone",
                        "operator": zone.operator,
                        "operator_name": truth.operator_names.get(zone.operator, zone.operator),
                        "tech": zone.tech,
                        "zone": zone.zone,
                        "cells": len(zone.cells),
                        "area_m2": round(zone.area_m2, 1),
                    },
                }
            )
        if not cells:
            continue
        for i, cell in enumerate(layer.cells.tolist()):
            ring = [[round(lon, 7), round(lat, 7)] for lat, lon in h3.cell_to_boundary(cell)]
            rsrp = float(layer.rsrp_dbm[i])
            sinr = float(layer.sinr_db[i])
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                    "properties": {
                        "layer": "cell",
                        "operator": layer.operator,
                        "operator_name": truth.operator_names.get(layer.operator, layer.operator),
                        "tech": layer.tech,
                        "h3": cell,
                        "dead": bool(layer.dead[i]),
                        "threshold_dbm": layer.threshold_dbm,
                        "rsrp_dbm": None if not np.isfinite(rsrp) else round(rsrp, 1),
                        "sinr_db": None if np.isnan(sinr) else round(sinr, 1),
                    },
                }
            )
    return {
        "type": "FeatureCollection",
        "properties": {
            "scenario": truth.scenario,
            "seed": truth.seed,
            "resolution": truth.resolution,
            "profile": truth.profile,
        },
        "features": features,
    }


def write_truth(
    scenario: Scenario,
    *,
    out: str | Path,
    resolution: int = DEFAULT_RESOLUTION,
    operator: str | None = None,
    tech: str | None = None,
    cells: bool = True,
    png: str | Path | None = None,
) -> str:
    """Write the GeoJSON (and optionally the PNG map); return a short human summary."""
    env = RadioEnvironment(scenario)
    truth = ground_truth(scenario, resolution, operator, tech, env=env)
    Path(out).write_text(json.dumps(to_geojson(truth, scenario, cells=cells)), encoding="utf-8")
    lines = [f"wrote {out}: H3 resolution {resolution}, profile {truth.profile}"]
    for (op, t), layer in truth.layers.items():
        n = len(layer.cells)
        lines.append(
            f"  {op:<10} {t:<3} {n} cells, {len(layer.dead_cells)} dead "
            f"({100.0 * len(layer.dead_cells) / max(1, n):.0f} %), {len(layer.dead_zones)} dead zones"
        )
    if png is not None:
        from firmware_sim.render import render_coverage

        render_coverage(scenario, png, env=env, truth=truth)
        lines.append(f"wrote {png}")
    return "\n".join(lines)
