"""Nearest site: haversine distance and bearing against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.sites import EARTH_RADIUS_M, distance_bearing, nearest_site


@pytest.mark.parametrize(
    ("to", "distance_m", "bearing_deg"),
    [
        ((106.0, 21.0), math.radians(1.0) * EARTH_RADIUS_M, 0.0),
        ((106.0, 19.0), math.radians(1.0) * EARTH_RADIUS_M, 180.0),
        ((106.01, 20.0), math.radians(0.01) * math.cos(math.radians(20.0)) * EARTH_RADIUS_M, 90.0),
        ((105.99, 20.0), math.radians(0.01) * math.cos(math.radians(20.0)) * EARTH_RADIUS_M, 270.0),
    ],
)
def test_distance_and_bearing_on_the_axes(
    to: tuple[float, float], distance_m: float, bearing_deg: float
) -> None:
    d, b = distance_bearing(106.0, 20.0, np.array([to[0]]), np.array([to[1]]))
    assert d[0] == pytest.approx(distance_m, rel=1e-6)
    assert b[0] == pytest.approx(bearing_deg, abs=0.01)


def test_nearest_of_several_and_none_without_sites() -> None:
    near = nearest_site(106.0, 20.0, [106.1, 106.0, 105.0], [20.0, 20.001, 20.0])
    assert near is not None and near.index == 1
    assert near.distance_m == pytest.approx(111.2, abs=0.1) and near.bearing_deg == 0.0
    assert nearest_site(106.0, 20.0, [], []) is None
