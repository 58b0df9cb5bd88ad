"""Survey planning: where a measurement would change the dead-zone map most, as a drive plan.

A candidate is a park cell that nobody measured, or one the dead-zone test left ``uncertain``.
Its **score** is what a measurement there would change::

    score = std_db × area_m2 × exp(-z² / 2),   z = (predicted - threshold) / std_db

uncertainty times area times closeness of the prediction to the threshold (1 at the threshold,
0.14 two standard deviations away). The **expected gain** of a cell is the area whose class a
measurement is expected to settle: ``area_m2 × Φ(-|z|)``, the probability that the predicted
class is wrong times the area; a plan's expected gain is the sum over its waypoints.

The top ``max_waypoints`` candidates become waypoints, ordered into an open route by nearest
neighbour from the best-ranked one (or a given start), then improved by 2-opt. The plan is
written as GeoJSON (waypoints and the route line) and GPX 1.1 (``<wpt>`` and one ``<rte>`` of
``<rtept>``: what drive-test apps import).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from analytics.coverage import cell_area_m2, cell_center, cell_str
from analytics.prediction import PredictedLayer

GPX_NS: Final = "http://www.topografix.com/GPX/1/1"
_M_PER_DEG_LAT: Final = 110_574.0
_M_PER_DEG_LON_EQ: Final = 111_320.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Waypoint:
    """One cell to measure."""

    rank: int
    """1 = highest score."""
    cell: int
    lon: float
    lat: float
    measured: bool
    """True for a measured cell the dead-zone test left uncertain."""
    predicted_rsrp_dbm: float
    std_db: float
    score: float
    gain_m2: float

    def properties(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "cell": cell_str(self.cell),
            "measured": self.measured,
            "predicted_rsrp_dbm": round(self.predicted_rsrp_dbm, 1),
            "std_db": round(self.std_db, 2),
            "score": round(self.score, 1),
            "gain_m2": round(self.gain_m2, 1),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyPlan:
    """Waypoints in driving order, the route length and the expected gain."""

    park: str
    operator: str
    tech: str
    threshold_dbm: float
    waypoints: tuple[Waypoint, ...]
    route_length_m: float
    expected_gain_m2: float
    candidates: int

    def summary(self) -> dict[str, Any]:
        return {
            "park": self.park,
            "operator": self.operator,
            "tech": self.tech,
            "threshold_dbm": self.threshold_dbm,
            "waypoints": len(self.waypoints),
            "candidates": self.candidates,
            "route_length_m": round(self.route_length_m, 1),
            "expected_gain_m2": round(self.expected_gain_m2, 1),
        }


def _phi_tail(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``Φ(-|z|)``."""
    out: npt.NDArray[np.float64] = 0.5 * np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in z.tolist()])
    return out


def rank_cells(layer: PredictedLayer, *, uncertain_measured: Iterable[int] = ()) -> list[Waypoint]:
    """Every candidate of ``layer`` (module docstring), best first; ``rank`` is the place in the list."""
    uncertain = {int(c) for c in uncertain_measured}
    cand = np.array(
        [
            bool(layer.in_park[i]) and (not bool(layer.measured[i]) or int(layer.cells[i]) in uncertain)
            for i in range(len(layer))
        ],
        dtype=bool,
    )
    idx = np.flatnonzero(cand)
    if len(idx) == 0:
        return []
    std = np.maximum(layer.std_db[idx], 1e-6)
    z = (layer.predicted_dbm[idx] - layer.threshold_dbm) / std
    area = np.array([cell_area_m2(int(c)) for c in layer.cells[idx].tolist()])
    score = std * area * np.exp(-0.5 * z**2)
    gain = area * _phi_tail(z)
    order = np.lexsort((layer.cells[idx], -score))
    out: list[Waypoint] = []
    for rank, j in enumerate(order.tolist(), start=1):
        i = int(idx[j])
        cell = int(layer.cells[i])
        lon, lat = cell_center(cell)
        out.append(
            Waypoint(
                rank=rank,
                cell=cell,
                lon=lon,
                lat=lat,
                measured=bool(layer.measured[i]),
                predicted_rsrp_dbm=float(layer.predicted_dbm[i]),
                std_db=float(layer.std_db[i]),
                score=float(score[j]),
                gain_m2=float(gain[j]),
            )
        )
    return out


def _xy(lonlat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lat0 = float(lonlat[:, 1].mean())
    x = lonlat[:, 0] * _M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    return np.column_stack([x, lonlat[:, 1] * _M_PER_DEG_LAT]).astype(np.float64)


def route_order(xy: npt.NDArray[np.float64], start: int = 0) -> list[int]:
    """An open route through every point from ``start``: nearest neighbour, then 2-opt."""
    n = len(xy)
    if n <= 2:
        return list(range(n)) if start == 0 else [start, *[i for i in range(n) if i != start]]
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    left = set(range(n)) - {start}
    path = [start]
    while left:
        last = path[-1]
        nxt = min(left, key=lambda j: (d[last, j], j))
        path.append(nxt)
        left.remove(nxt)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for k in range(i + 1, n):
                a, b = path[i - 1], path[i]
                c = path[k]
                # Reversing path[i..k]: edges (a, b) and (c, e) become (a, c) and (b, e); an open route's end has no e.
                before = d[a, b] + (d[c, path[k + 1]] if k + 1 < n else 0.0)
                after = d[a, c] + (d[b, path[k + 1]] if k + 1 < n else 0.0)
                if after < before - 1e-9:
                    path[i : k + 1] = path[i : k + 1][::-1]
                    improved = True
    return path


def route_length_m(lonlat: npt.NDArray[np.float64]) -> float:
    """Length of a polyline of ``(lon, lat)`` points in metres (local flat projection)."""
    if len(lonlat) < 2:
        return 0.0
    xy = _xy(lonlat)
    return float(np.sqrt((np.diff(xy, axis=0) ** 2).sum(axis=1)).sum())


def plan_survey(
    layer: PredictedLayer,
    *,
    max_waypoints: int = 25,
    uncertain_measured: Iterable[int] = (),
    start: tuple[float, float] | None = None,
) -> SurveyPlan:
    """The drive plan of one layer: the ``max_waypoints`` best candidates in route order.

    ``start`` (lon, lat): where the team sets out; the route begins at the waypoint nearest it.
    """
    if max_waypoints < 1:
        raise ValueError("max_waypoints must be at least 1")
    ranked = rank_cells(layer, uncertain_measured=uncertain_measured)
    top = ranked[:max_waypoints]
    ordered: list[Waypoint] = []
    length = 0.0
    if top:
        lonlat = np.array([(w.lon, w.lat) for w in top], dtype=np.float64)
        first = 0
        if start is not None:
            xy = _xy(np.r_[lonlat, [start]])
            first = int(np.argmin(((xy[:-1] - xy[-1]) ** 2).sum(axis=1)))
        order = route_order(_xy(lonlat), first)
        ordered = [top[i] for i in order]
        length = route_length_m(lonlat[order])
    return SurveyPlan(
        park=layer.park,
        operator=layer.operator,
        tech=layer.tech,
        threshold_dbm=layer.threshold_dbm,
        waypoints=tuple(ordered),
        route_length_m=length,
        expected_gain_m2=float(sum(w.gain_m2 for w in top)),
        candidates=len(ranked),
    )


def to_geojson(plans: Sequence[SurveyPlan]) -> dict[str, Any]:
    """Plans as one FeatureCollection: a Point per waypoint (``order`` = place on its route) and
    each route as a LineString; ``plans`` lists each plan's summary."""
    feats: list[dict[str, Any]] = []
    for plan in plans:
        layer = {"park": plan.park, "operator": plan.operator, "tech": plan.tech}
        for k, w in enumerate(plan.waypoints):
            feats.append(
                {
                    "type": "Feature",
                    "id": f"waypoint:{plan.park}:{plan.operator}:{plan.tech}:{cell_str(w.cell)}",
                    "geometry": {"type": "Point", "coordinates": [w.lon, w.lat]},
                    "properties": {"kind": "waypoint", **layer, "order": k + 1, **w.properties()},
                }
            )
        if len(plan.waypoints) >= 2:
            feats.append(
                {
                    "type": "Feature",
                    "id": f"route:{plan.park}:{plan.operator}:{plan.tech}",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[w.lon, w.lat] for w in plan.waypoints],
                    },
                    "properties": {
                        "kind": "route",
                        **layer,
                        "length_m": round(plan.route_length_m, 1),
                        "expected_gain_m2": round(plan.expected_gain_m2, 1),
                    },
                }
            )
    return {
        "type": "FeatureCollection",
        "features": feats,
        "plans": [p.summary() for p in plans],
        "expected_gain_m2": round(sum(p.expected_gain_m2 for p in plans), 1),
    }


def to_gpx(plans: Sequence[SurveyPlan], *, creator: str = "parkwatch") -> str:
    """Plans as GPX 1.1: a ``<wpt>`` per waypoint and one ``<rte>`` of ``<rtept>`` per plan, in
    driving order."""
    ET.register_namespace("", GPX_NS)
    q = f"{{{GPX_NS}}}"
    root = ET.Element(f"{q}gpx", {"version": "1.1", "creator": creator})
    meta = ET.SubElement(root, f"{q}metadata")
    ET.SubElement(meta, f"{q}name").text = "parkwatch survey plan"
    ET.SubElement(meta, f"{q}desc").text = (
        "; ".join(
            f"{p.park} {p.operator} {p.tech}: {len(p.waypoints)} cells (threshold {p.threshold_dbm:g} dBm), "
            f"expected gain {p.expected_gain_m2 / 1e4:.2f} ha, route {p.route_length_m / 1000:.2f} km"
            for p in plans
        )
        or "no cell to survey"
    )

    def label(plan: SurveyPlan, k: int, w: Waypoint) -> str:
        prefix = f"{plan.operator} {plan.tech} " if len(plans) > 1 else ""
        return f"{prefix}{k:02d} {cell_str(w.cell)}"

    # The schema wants every <wpt> before the first <rte>.
    for plan in plans:
        for k, w in enumerate(plan.waypoints, start=1):
            wpt = ET.SubElement(root, f"{q}wpt", {"lat": f"{w.lat:.6f}", "lon": f"{w.lon:.6f}"})
            ET.SubElement(wpt, f"{q}name").text = label(plan, k, w)
            ET.SubElement(wpt, f"{q}desc").text = (
                f"{plan.park} {plan.operator} {plan.tech}, cell {cell_str(w.cell)}: predicted "
                f"{w.predicted_rsrp_dbm:.1f} dBm ± {w.std_db:.1f} dB"
                f"{', measured but uncertain' if w.measured else ', not measured'}"
            )
    for plan in plans:
        rte = ET.SubElement(root, f"{q}rte")
        ET.SubElement(rte, f"{q}name").text = f"{plan.park} {plan.operator} {plan.tech} survey plan"
        for k, w in enumerate(plan.waypoints, start=1):
            pt = ET.SubElement(rte, f"{q}rtept", {"lat": f"{w.lat:.6f}", "lon": f"{w.lon:.6f}"})
            ET.SubElement(pt, f"{q}name").text = label(plan, k, w)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
