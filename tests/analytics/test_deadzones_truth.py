"""Dead-zone detection scored against the simulator's ground truth on the default scenario.

A survey samples the true radio field at random points inside the parks (about 20 points per
H3 cell at resolution 10, per operator and technology), adds measurement noise (RSRP ±3 dB,
SINR ±2 dB, 1 sigma), stores the readings in a real DuckDB file and runs the same pipeline as
the API: cell statistics in SQL, cell classes from medians, dead zones at or below ``poor``.
Points without service give no RSRP (as a modem reports them) and so no sample.

Floors, per operator and technology: precision >= 0.85, recall >= 0.75, IoU >= 0.65 of dead-zone
area (inside the park boundaries, where the truth is defined). What the detector cannot get right
is the boundary: a cell's true class is the field at its centre, the detector sees the median
over the whole cell, and noise flips cells whose median sits within a few dB of a threshold.
The layer with the fewest and smallest zones (lotus LTE: 145 dead cells in 27 zones) suffers
most: over three survey seeds it scored precision 0.886-0.904, recall 0.807-0.848, IoU
0.731-0.778; in the committed seed every other layer scored precision >= 0.93, recall >= 0.89,
IoU >= 0.85. The floors sit about 0.05 below the
worst seed, and far above what a broken classifier or clustering gives (marking every sampled
cell dead scores precision 0.08 on the least dead layer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import h3
import numpy as np
import pyarrow as pa
import pytest

from analytics.coverage import cell_classes
from analytics.deadzones import area_scores, find_dead_zones
from analytics.signal import CLASS_INDEX
from storage.duckdb_schema import ddl
from storage.query import Scope
from storage.query_duckdb import DuckDBQuery

truth_mod = pytest.importorskip("firmware_sim.truth")
from firmware_sim.radio.environment import RadioEnvironment  # noqa: E402
from firmware_sim.scenario import load_scenario  # noqa: E402

pytestmark = pytest.mark.integration

POINTS = 36_000
DAY = datetime(2026, 11, 2, tzinfo=UTC)
FLOORS = {"precision": 0.85, "recall": 0.75, "iou": 0.65}


def _survey(path: Path) -> tuple[object, dict[tuple[str, str], set[int]]]:
    scenario = load_scenario()
    env = RadioEnvironment(scenario)
    truth = truth_mod.ground_truth(scenario, env=env)
    rng = np.random.default_rng(20261102)
    cells = sorted({c for layer in truth.layers.values() for c in layer.cells.tolist()})
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    pick = rng.integers(0, len(cells), POINTS)
    lat = centres[pick, 0] + rng.uniform(-0.0007, 0.0007, POINTS)
    lon = centres[pick, 1] + rng.uniform(-0.0007, 0.0007, POINTS)
    h3s = np.array(
        [h3.str_to_int(h3.latlng_to_cell(a, b, 10)) for a, b in zip(lat, lon, strict=True)], dtype=np.uint64
    )
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    for operator, tech in truth.layers:
        m = env.measure(lat, lon, operator=operator, tech=tech)
        ok = ~np.isnan(m.rsrp_dbm)
        n = int(ok.sum())
        table = pa.table(
            {
                "ts": pa.array(
                    [
                        DAY.replace(tzinfo=None) + timedelta(seconds=float(s))
                        for s in rng.uniform(0, 86400, n)
                    ],
                    pa.timestamp("us"),
                ),
                "park": pa.array(["hp"] * n),
                "gw": pa.array(["probe-gw"] * n),
                "dev": pa.array(rng.choice(["probe-1", "probe-2", "probe-3"], n).tolist()),
                "lat": pa.array(lat[ok]),
                "lon": pa.array(lon[ok]),
                "h3": pa.array(h3s[ok], pa.uint64()),
                "operator": pa.array([operator] * n),
                "tech": pa.array([tech] * n),
                "rsrp_dbm": pa.array(np.clip(m.rsrp_dbm[ok] + rng.normal(0, 3, n), -156, -31)),
                "rsrq_db": pa.array(np.clip(m.rsrq_db[ok], -43, 20)),
                "sinr_db": pa.array(np.clip(m.sinr_db[ok] + rng.normal(0, 2, n), -23, 40)),
            }
        )
        con.register("survey", table)
        con.execute("INSERT INTO cellular BY NAME SELECT * FROM survey")
        con.unregister("survey")
    con.close()
    truth_cells = {k: {h3.str_to_int(c) for c in layer.dead_cells} for k, layer in truth.layers.items()}
    return truth, truth_cells


def test_dead_zones_match_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth, truth_cells = _survey(tmp_path / "survey.duckdb")
    backend = DuckDBQuery(path=tmp_path / "survey.duckdb")
    stats = backend.cell_stats(Scope(parks=None, start=DAY, end=DAY + timedelta(days=1)), resolution=10)
    backend.close()
    zones = find_dead_zones(stats, cell_classes(stats), max_class=CLASS_INDEX["poor"], min_samples=5)
    lines = []
    worst = dict.fromkeys(FLOORS, 1.0)
    for (operator, tech), dead in sorted(truth_cells.items()):
        # The truth is defined inside the park boundaries only; jittered points may land just outside.
        inside = {h3.str_to_int(c) for c in truth.layer(operator, tech).cells.tolist()}  # type: ignore[attr-defined]
        detected = {c for z in zones if (z.operator, z.tech) == (operator, tech) for c in z.cells} & inside
        s = area_scores(detected, dead)
        by_count = truth.score(operator, tech, [h3.int_to_str(c) for c in detected])  # type: ignore[attr-defined]
        assert by_count.precision == pytest.approx(s["precision"], abs=0.01)  # cells of nearly equal area
        lines.append(
            f"{operator:>9} {tech:<3} precision {s['precision']:.3f} recall {s['recall']:.3f} IoU {s['iou']:.3f} "
            f"(true dead cells {len(dead)}, detected {len(detected)})"
        )
        for k in FLOORS:
            worst[k] = min(worst[k], s[k])
    with capsys.disabled():
        print("\ndead-zone detection vs ground truth (area-weighted):\n" + "\n".join(lines))
    for k, floor in FLOORS.items():
        assert worst[k] >= floor, (k, worst[k], lines)
    # A detector that marks every sampled cell dead must fail the floors.
    sampled = {int(c) for c in stats.h3} & inside
    assert min(area_scores(sampled, d)["precision"] for d in truth_cells.values()) < FLOORS["precision"]
