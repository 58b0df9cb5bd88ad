"""Nearest cell site of a place: great-circle distance and initial bearing.

Pure functions over plain numbers and numpy arrays. A dead zone's nearest site is the nearest
site of the zone's operator and technology (OpenCelliD ``radio`` equals the reading's ``tech``):
where a hole lies relative to the operator's own cells is what a planner asks first (too far,
or near but shadowed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean Earth radius (IUGG), for haversine distances."""


def distance_bearing(
    lon: float, lat: float, to_lon: npt.NDArray[np.float64], to_lat: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Haversine distance (m) and initial bearing (degrees clockwise from north, 0..360) from
    ``(lon, lat)`` to each of the points ``(to_lon, to_lat)``."""
    p1, l1 = math.radians(lat), math.radians(lon)
    p2, l2 = np.radians(to_lat), np.radians(to_lon)
    dp, dl = p2 - p1, l2 - l1
    a = np.sin(dp / 2.0) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    dist = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    y = np.sin(dl) * np.cos(p2)
    x = math.cos(p1) * np.sin(p2) - math.sin(p1) * np.cos(p2) * np.cos(dl)
    bearing = (np.degrees(np.arctan2(y, x)) + 360.0) % 360.0
    return dist, bearing


@dataclass(frozen=True, slots=True, kw_only=True)
class NearestSite:
    """The nearest site to a place: its index in the candidates, distance and bearing from the place."""

    index: int
    distance_m: float
    bearing_deg: float


def nearest_site(
    lon: float, lat: float, site_lon: Sequence[float], site_lat: Sequence[float]
) -> NearestSite | None:
    """The nearest of the sites at ``(site_lon, site_lat)`` to ``(lon, lat)``; None without sites.

    The bearing is the direction from the place to the site (where to look for the antenna).
    """
    if len(site_lon) == 0:
        return None
    dist, bearing = distance_bearing(
        lon, lat, np.asarray(site_lon, dtype=np.float64), np.asarray(site_lat, dtype=np.float64)
    )
    i = int(np.argmin(dist))
    return NearestSite(index=i, distance_m=round(float(dist[i]), 1), bearing_deg=round(float(bearing[i]), 1))
