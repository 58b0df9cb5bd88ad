"""Ground truth: noise-free median RSRP per H3 cell against the hole threshold, zones, GeoJSON, PNG, scoring."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import h3
import jsonschema
import numpy as np
import pytest

from analytics.signal import DEFAULT_PROFILE
from firmware_sim.cli import register
from firmware_sim.png import write_png
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import Scenario
from firmware_sim.truth import HOLE_RSRP_DBM, connected_components, ground_truth, park_cells
from parkwatch.cli import main

# Just enough of RFC 7946 to catch structural mistakes.
_POSITION = {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}}
_RING = {"type": "array", "minItems": 4, "items": _POSITION}
GEOJSON_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "geometry", "properties"],
                "properties": {
                    "type": {"const": "Feature"},
                    "geometry": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["type", "coordinates"],
                                "properties": {
                                    "type": {"const": "Polygon"},
                                    "coordinates": {"type": "array", "items": _RING},
                                },
                            },
                            {
                                "type": "object",
                                "required": ["type", "coordinates"],
                                "properties": {
                                    "type": {"const": "MultiPolygon"},
                                    "coordinates": {
                                        "type": "array",
                                        "items": {"type": "array", "items": _RING},
                                    },
                                },
                            },
                        ]
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def env(scenario: Scenario) -> RadioEnvironment:
    return RadioEnvironment(scenario)


def test_truth_is_the_noise_free_median_of_each_cell(scenario: Scenario, env: RadioEnvironment) -> None:
    truth = ground_truth(scenario, 9, "lotus", "LTE", env=env)
    layer = truth.layer("lotus", "LTE")
    assert list(truth.layers) == [("lotus", "LTE")]
    assert all(h3.get_resolution(c) == 9 for c in layer.cells.tolist())
    # Recompute three cells by hand: the field at the 49 grandchildren's centres, median.
    for i in (0, len(layer.cells) // 2, len(layer.cells) - 1):
        kids = sorted(h3.cell_to_children(str(layer.cells[i]), 11))
        pts = np.array([h3.cell_to_latlng(k) for k in kids])
        m = env.measure(pts[:, 0], pts[:, 1], operator="lotus", tech="LTE")
        expected = float(np.median(np.where(np.isnan(m.rsrp_dbm), -np.inf, m.rsrp_dbm)))
        assert layer.rsrp_dbm[i] == pytest.approx(expected)
    assert layer.threshold_dbm == -115.0
    dead = {c for c, v in layer.medians().items() if v <= -115.0}
    assert dead == layer.dead_cells
    assert sum(len(z.cells) for z in layer.dead_zones) == len(layer.dead_cells)


def test_truth_uses_no_detector_code_and_the_profile_threshold() -> None:
    source = (
        Path(__file__).resolve().parents[2].joinpath("firmware_sim", "truth.py").read_text(encoding="utf-8")
    )
    imports = [ln for ln in source.splitlines() if ln.startswith(("from ", "import "))]
    assert imports and not any("analytics" in ln for ln in imports), imports
    for tech, threshold in HOLE_RSRP_DBM.items():
        assert DEFAULT_PROFILE.thresholds(tech).hole_rsrp_dbm == threshold


def test_truth_is_reproducible_and_seed_dependent(scenario: Scenario, env: RadioEnvironment) -> None:
    import msgspec

    a = ground_truth(scenario, 10, "redriver", "LTE", env=env).layer("redriver", "LTE")
    b = ground_truth(scenario, 10, "redriver", "LTE").layer("redriver", "LTE")
    other = msgspec.structs.replace(scenario, sim=msgspec.structs.replace(scenario.sim, seed=7))
    c = ground_truth(other, 10, "redriver", "LTE").layer("redriver", "LTE")
    assert a.dead_cells == b.dead_cells and np.array_equal(a.rsrp_dbm, b.rsrp_dbm, equal_nan=True)
    assert a.dead_cells != c.dead_cells


def test_neighbouring_cells_mostly_agree(scenario: Scenario, env: RadioEnvironment) -> None:
    layer = ground_truth(scenario, 11, "lotus", "LTE", env=env).layer("lotus", "LTE")
    rsrp = dict(zip(layer.cells.tolist(), layer.rsrp_dbm.tolist(), strict=True))
    diffs = [abs(v - rsrp[n]) for c, v in rsrp.items() for n in h3.grid_ring(c, 1) if n in rsrp]
    assert float(np.median(diffs)) < 3.0  # spatially correlated, not salt-and-pepper


def test_connected_components() -> None:
    c = h3.latlng_to_cell(20.85, 106.75, 10)
    ring = set(h3.grid_ring(c, 1))
    far = h3.latlng_to_cell(20.95, 106.85, 10)
    groups = connected_components({c, *ring, far})
    assert [len(g) for g in groups] == [7, 1]


def test_score(scenario: Scenario, env: RadioEnvironment) -> None:
    truth = ground_truth(scenario, 10, "bachdang", "LTE", env=env)
    dead = truth.layer("bachdang", "LTE").dead_cells
    perfect = truth.score("bachdang", "LTE", dead)
    assert (perfect.precision, perfect.recall, perfect.iou) == (1.0, 1.0, 1.0)
    assert truth.layer("Bach Dang Wireless", "LTE") is truth.layer("bachdang", "LTE")
    half = sorted(dead)[: len(dead) // 2]
    s = truth.score("bachdang", "LTE", half)
    assert s.precision == 1.0 and s.recall == pytest.approx(len(half) / len(dead))
    coarse = {h3.cell_to_parent(c, 8) for c in dead}
    s = truth.score("bachdang", "LTE", coarse)
    assert s.recall == 1.0 and s.precision < 1.0


def test_cli_truth_writes_valid_geojson_with_dead_zones(tmp_path: Path, scenario: Scenario) -> None:
    out = tmp_path / "truth.geojson"
    png = tmp_path / "map.png"
    argv = ["sim", "truth", "--scenario", "default", "--out", str(out), "--tech", "LTE", "--resolution", "9"]
    assert main([*argv, "--operator", "bachdang", "--png", str(png)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(doc, GEOJSON_SCHEMA)
    layers = {f["properties"]["layer"] for f in doc["features"]}
    assert layers == {"park", "cell", "dead_zone", "underserved"}
    zones = [f for f in doc["features"] if f["properties"]["layer"] == "dead_zone"]
    assert zones and all(f["properties"]["tech"] == "LTE" and f["properties"]["area_m2"] > 0 for f in zones)
    cells = [f for f in doc["features"] if f["properties"]["layer"] == "cell"]
    assert len(cells) == len(park_cells(scenario, 9))
    lon, lat = cells[0]["geometry"]["coordinates"][0][0]
    assert 106 < lon < 107 and 20 < lat < 21  # GeoJSON order: lon, lat
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_cli_truth_rejects_unknown_operator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "truth", "--operator", "nobody", "--out", str(tmp_path / "t.json")]) == 2
    assert "nobody" in capsys.readouterr().err
    assert callable(register)


def test_png_writer_round_trip(tmp_path: Path) -> None:
    img = np.zeros((3, 4, 3), dtype=np.uint8)
    img[1, 2] = (10, 20, 30)
    path = tmp_path / "x.png"
    write_png(path, img)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (4, 3)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    rows = [raw[i * 13 + 1 : (i + 1) * 13] for i in range(3)]
    assert rows[1][6:9] == bytes((10, 20, 30))
