"""Two weeks of readings for park p1 with serving cells, a dead zone that shrinks, and a site list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import h3
import numpy as np

from tests.api.data import HOLE, RES, Rows, _dist_m, cellular_rows, dataset

POLLUTED_WEST_OF: Final = 106.7465
"""Readings west of this longitude are served by three cells at about the same level."""
BIG_HOLE_RADIUS_M: Final = 300.0
"""The hole of operator Alpha in the week before the test week (it shrinks to 180 m)."""
SITES_CSV: Final = """radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
LTE,452,90,100,2000,12,106.7560,20.8080,1500,40,1,1600000000,1700000000,-90
LTE,452,90,100,2001,13,106.7300,20.7800,1500,40,1,1600000000,1700000000,0
NR,452,90,100,3000,,106.7500,20.7900,900,12,1,1600000000,1700000000,
LTE,452,91,101,4000,7,106.7531,20.8030,800,9,0,1600000000,1700000000,-85
LTE,999,90,100,5000,1,106.7520,20.8010,800,9,1,1600000000,1700000000,0
5G,452,90,100,2002,12,106.7560,20.8080,1500,40,1,1600000000,1700000000,0
LTE,452,90,100,2003,12,206.7560,20.8080,1500,40,1,1600000000,1700000000,0
LTE,452,90,100
LTE,452,90,100,2004,12,106.9,20.8,1500,x,1,1600000000,1700000000,0
LTE,452,90,100,9000,1,110.0,10.0,1500,4,1,1600000000,1700000000,0
"""
"""Five good rows (one far from every park), then four bad ones on lines 7-10."""
OPERATORS_BY_PLMN: Final = {"452-90": "Alpha", "452-91": "Beta"}


def _serve(rows: list[dict[str, Any]]) -> None:
    for i, r in enumerate(rows):
        if r["lon"] < POLLUTED_WEST_OF:
            r["cell_id"] = 1000 + i % 3
            r["pci"] = 10 + i % 3
            r["rsrp_dbm"] = -86.0 + (i % 3) * 0.5
        else:
            r["cell_id"] = 2000
            r["pci"] = 12


def _dense(*, hole_radius_m: float, days_before: int, seed: int, n: int = 3000) -> list[dict[str, Any]]:
    """Alpha LTE readings within 500 m of :data:`HOLE`, dead within ``hole_radius_m`` of it."""
    rows = cellular_rows(n=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for r in rows:
        r["lat"] = HOLE[0] + float(rng.uniform(-0.0045, 0.0045))
        r["lon"] = HOLE[1] + float(rng.uniform(-0.0045, 0.0045))
        r["h3"] = h3.str_to_int(h3.latlng_to_cell(r["lat"], r["lon"], RES))
        r["operator"], r["tech"] = "Alpha", "LTE"
        r["ts"] = r["ts"] - timedelta(days=days_before)
        far = float(_dist_m(np.array([r["lat"]]), np.array([r["lon"]]), HOLE)[0])
        r["rsrp_dbm"] = round(float((-120.0 if far < hole_radius_m else -85.0) + rng.normal(0, 3)), 1)
    return rows


def two_weeks() -> Rows:
    """The API test data set, serving cells on its readings, and a week before it with a bigger hole."""
    rows = dataset()
    current = [r for r in rows["cellular"] if r["park"] == "p1"]
    earlier = cellular_rows(n=1500, seed=7)
    rng = np.random.default_rng(8)
    for r in earlier:
        r["ts"] = r["ts"] - timedelta(days=7)
        far = float(_dist_m(np.array([r["lat"]]), np.array([r["lon"]]), HOLE)[0])
        if r["operator"] == "Alpha" and far < BIG_HOLE_RADIUS_M:
            r["rsrp_dbm"] = round(float(-118.0 + rng.normal(0, 3)), 1)
    dense = _dense(hole_radius_m=150.0, days_before=0, seed=11) + _dense(
        hole_radius_m=BIG_HOLE_RADIUS_M, days_before=7, seed=12
    )
    _serve(current)
    _serve(earlier)
    _serve(dense)
    rows["cellular"] = rows["cellular"] + earlier + dense
    return rows
