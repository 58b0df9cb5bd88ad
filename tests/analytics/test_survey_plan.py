"""Survey plans: ranking, route order, and GPX 1.1 as drive-test apps import it."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import h3
import numpy as np

from analytics.prediction import CellObservations, PredictOptions, predict_layer
from analytics.survey_plan import GPX_NS, plan_survey, rank_cells, route_order, to_geojson, to_gpx

G = f"{{{GPX_NS}}}"


def _layer() -> object:
    centre = h3.latlng_to_cell(20.80, 106.75, 10)
    cells = sorted(h3.str_to_int(c) for c in h3.grid_disk(centre, 6))
    rng = np.random.default_rng(3)
    measured = [c for i, c in enumerate(cells) if i % 3]  # a third unmeasured
    lat = np.array([h3.cell_to_latlng(h3.int_to_str(c))[0] for c in measured])
    rsrp = -115.0 + (lat - 20.80) * 110_574.0 / 40.0 + rng.normal(0, 1, len(measured))  # -115 dBm along y = 0
    obs = CellObservations(
        cells=np.array(measured, dtype=np.uint64),
        rsrp_median_dbm=rsrp,
        var_db2=np.full(len(measured), 1.0),
        samples=np.full(len(measured), 8, dtype=np.int64),
    )
    return predict_layer(
        obs,
        park="p1",
        operator="Alpha",
        tech="LTE",
        threshold_dbm=-115.0,
        park_cells=frozenset(cells),
        options=PredictOptions(margin_rings=0),
    )


def test_cells_near_the_threshold_rank_first() -> None:
    layer = _layer()
    ranked = rank_cells(layer)  # type: ignore[arg-type]
    assert ranked and [w.rank for w in ranked] == list(range(1, len(ranked) + 1))
    assert all(not w.measured for w in ranked)
    top = abs(ranked[0].predicted_rsrp_dbm + 115.0)
    bottom = abs(ranked[-1].predicted_rsrp_dbm + 115.0)
    assert top < bottom and ranked[0].score >= ranked[-1].score
    assert ranked[0].gain_m2 > ranked[-1].gain_m2


def test_route_on_a_line_is_driven_end_to_end() -> None:
    xs = np.array([0.0, 500.0, 100.0, 400.0, 200.0, 300.0])
    order = route_order(np.c_[xs, np.zeros(6)], start=0)
    assert [xs[i] for i in order] == [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
    # 2-opt undoes the crossing nearest neighbour leaves on a square.
    square = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, -0.1]])
    path = route_order(square, start=4)
    length = sum(float(np.hypot(*(square[a] - square[b]))) for a, b in itertools.pairwise(path))
    assert length <= 0.5 + 1.0 + 1.0 + 1.0 + 0.2


def test_gpx_is_gpx_1_1_with_a_route_of_route_points() -> None:
    plan = plan_survey(_layer(), max_waypoints=10)  # type: ignore[arg-type]
    assert len(plan.waypoints) == 10 and plan.expected_gain_m2 > 0 and plan.route_length_m > 0
    root = ET.fromstring(to_gpx([plan]))
    assert root.tag == f"{G}gpx" and root.get("version") == "1.1" and root.get("creator") == "parkwatch"
    children = [c.tag for c in root]
    assert children[0] == f"{G}metadata"
    assert children.index(f"{G}rte") > max(i for i, t in enumerate(children) if t == f"{G}wpt")
    rtes = root.findall(f"{G}rte")
    assert len(rtes) == 1
    pts = rtes[0].findall(f"{G}rtept")
    assert len(pts) == 10 and len(root.findall(f"{G}wpt")) == 10
    for pt, w in zip(pts, plan.waypoints, strict=True):
        lat, lon = float(pt.attrib["lat"]), float(pt.attrib["lon"])
        assert -90 <= lat <= 90 and -180 <= lon <= 180
        assert math.isclose(lat, w.lat, abs_tol=1e-6) and math.isclose(lon, w.lon, abs_tol=1e-6)
        assert pt.find(f"{G}name") is not None


def test_geojson_has_waypoints_in_route_order_and_a_line() -> None:
    plan = plan_survey(_layer(), max_waypoints=5)  # type: ignore[arg-type]
    fc = to_geojson([plan])
    points = [f for f in fc["features"] if f["geometry"]["type"] == "Point"]
    lines = [f for f in fc["features"] if f["geometry"]["type"] == "LineString"]
    assert [f["properties"]["order"] for f in points] == [1, 2, 3, 4, 5]
    assert len(lines) == 1 and lines[0]["geometry"]["coordinates"] == [
        f["geometry"]["coordinates"] for f in points
    ]
    assert fc["plans"][0]["waypoints"] == 5 and fc["expected_gain_m2"] > 0
