"""Survey plans against uniform street drives: samples needed for the same dead-zone accuracy.

For each seed, park and (operator, technology) layer with true holes in that park:

* **uniform**: the hard street drive of ``firmware_sim.survey`` with 1, 2 and 3 vehicles;
* **plan**: the 1-vehicle drive, then ``--rounds`` rounds of: predict (``analytics.prediction``),
  plan the ``--waypoints`` best cells (``analytics.survey_plan``), drive the route (straight legs
  between the waypoints, a reading every 10–30 m with the hard setting's GNSS error, fading,
  a new modem with its own offset, no service below -124 dBm: every reading on the way counts).

The dead-zone map scored is the same for both: cells the dead-zone test calls dead, plus unmeasured
park cells predicted dead; IoU by cell area over every park cell against the noise-free truth
(``firmware_sim.truth``). Samples are the layer's readings.

    python bench/survey_plan.py                 # seeds 1-3
    python bench/survey_plan.py --seeds 1 --rounds 3 --waypoints 40
    python bench/survey_plan.py --initial-vehicles 2   # plan on top of the 2-vehicle drive
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import h3
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.coverage import cell_area_m2, park_cells
from analytics.deadzones import DetectOptions, assess_cells
from analytics.prediction import PredictOptions, observations, predict_layer
from analytics.signal import DEFAULT_PROFILE
from analytics.survey_plan import plan_survey
from bench.coverage_accuracy import survey_samples
from bench.coverage_prediction import scenario_for, site_positions
from contract.readings import NO_SERVICE_RSRP_DBM
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.survey import HARD, SurveySetting, drive_test
from firmware_sim.truth import ground_truth
from storage.query import CellSamples

SEEDS = (1, 2, 3)


def _concat(a: CellSamples, b: CellSamples) -> CellSamples:
    return CellSamples(
        **{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in dataclasses.fields(a)}
    )


def drive_route(
    env: RadioEnvironment,
    lonlat: list[tuple[float, float]],
    *,
    park: str,
    operator_id: str,
    operator: str,
    tech: str,
    dev: str,
    rng: np.random.Generator,
    setting: SurveySetting = HARD,
) -> CellSamples:
    """Readings of one modem driving straight legs through ``lonlat`` (the survey's noise model)."""
    xs, ys = env.projection.to_xy([p[1] for p in lonlat], [p[0] for p in lonlat])
    px: list[float] = []
    py: list[float] = []
    for (ax, ay), (bx, by) in zip(zip(xs, ys, strict=True), list(zip(xs, ys, strict=True))[1:], strict=False):
        length = float(np.hypot(bx - ax, by - ay))
        along = np.cumsum(rng.uniform(*setting.step_m, size=int(length / setting.step_m[0]) + 2))
        along = along[along <= length]
        px += (ax + (bx - ax) * along / max(length, 1e-9)).tolist()
        py += (ay + (by - ay) * along / max(length, 1e-9)).tolist()
    x, y = np.array(px), np.array(py)
    n = len(x)
    true_lat, true_lon = env.projection.to_latlon(x, y)
    err = rng.uniform(*setting.gnss_error_m, size=n)
    ang = rng.uniform(0, 2 * np.pi, size=n)
    lat, lon = env.projection.to_latlon(x + err * np.cos(ang), y + err * np.sin(ang))
    m = env.measure(true_lat, true_lon, operator=operator_id, tech=tech)
    offset = rng.uniform(-setting.device_offset_db, setting.device_offset_db)
    rsrp = (
        np.where(np.isnan(m.rsrp_dbm), -np.inf, m.rsrp_dbm)
        + offset
        + rng.normal(0, setting.fading_sigma_db, n)
    )
    lost = rsrp < setting.service_floor_dbm
    return CellSamples(
        park=np.full(n, park, dtype=object),
        h3=np.array(
            [h3.str_to_int(h3.latlng_to_cell(a, b, 10)) for a, b in zip(lat, lon, strict=True)],
            dtype=np.uint64,
        ),
        operator=np.full(n, operator, dtype=object),
        tech=np.full(n, tech, dtype=object),
        dev=np.full(n, dev, dtype=object),
        ts_ms=np.arange(n, dtype=np.int64) * 2000,
        lat=lat,
        lon=lon,
        rsrp_dbm=np.where(lost, NO_SERVICE_RSRP_DBM, np.round(rsrp, 1)),
        sinr_db=np.where(lost, np.nan, np.round(m.sinr_db, 1)),
        cell_id=np.full(n, np.nan),
        pci=np.full(n, np.nan),
    )


def _readings(survey: CellSamples) -> CellSamples:
    """The survey's rows with the serving-cell columns it does not report filled with NaN."""
    n = len(survey.park)
    return dataclasses.replace(survey, cell_id=np.full(n, np.nan), pci=np.full(n, np.nan))


def dead_map(
    samples: CellSamples, inside: frozenset[int], sites: list[tuple[float, float]], threshold: float
) -> tuple[set[int], object]:
    """Measured dead cells plus unmeasured park cells predicted dead; and the predicted layer."""
    a = assess_cells(samples, options=DetectOptions())
    dead = {int(c) for c, s in zip(a.h3.tolist(), a.state.tolist(), strict=True) if s == "dead"}
    park, operator, tech = str(samples.park[0]), str(samples.operator[0]), str(samples.tech[0])
    obs = observations(samples, offsets=a.offsets)[(park, operator, tech)]
    layer = predict_layer(
        obs,
        park=park,
        operator=operator,
        tech=tech,
        threshold_dbm=threshold,
        park_cells=inside,
        sites=sites,
        options=PredictOptions(margin_rings=0),
        validate=False,
    )
    dead |= {
        int(c)
        for c, cl, m in zip(layer.cells, layer.cls, layer.measured, strict=True)
        if cl == "predicted_dead" and not m
    }
    uncertain = {int(c) for c, s in zip(a.h3.tolist(), a.state.tolist(), strict=True) if s == "uncertain"}
    return dead & inside, (layer, uncertain)


def iou(found: set[int], truth: set[int]) -> tuple[float, float]:
    """(intersection, union) area in m²."""
    return sum(cell_area_m2(c) for c in found & truth), sum(cell_area_m2(c) for c in found | truth)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--waypoints", type=int, default=30)
    ap.add_argument("--parks", nargs="+", help="only these parks (default: all)")
    ap.add_argument(
        "--initial-vehicles", type=int, choices=(1, 2), default=1, help="the drive the plan starts from"
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"seeds {args.seeds}; plan: {args.initial_vehicles}-vehicle drive + {args.rounds} rounds of "
        f"{args.waypoints} waypoints"
    )
    threshold = DEFAULT_PROFILE.thresholds("LTE").hole_rsrp_dbm
    rows: list[tuple[str, int, dict[str, tuple[int, float, float]]]] = []
    for seed in args.seeds:
        scenario = scenario_for(seed)
        env = RadioEnvironment(scenario)
        truth = ground_truth(scenario, env=env)
        sites = site_positions(scenario)
        drives = {
            v: _readings(
                survey_samples(
                    drive_test(scenario, dataclasses.replace(HARD, vehicles=v), seed=seed * 7919 + 1, env=env)
                )
            )
            for v in (1, 2, 3)
        }
        rng = np.random.default_rng(seed)
        for park in scenario.parks:
            if args.parks and park.id not in args.parks:
                continue
            inside = park_cells([[p[1], p[0]] for p in park.boundary], 10)
            for (op_id, tech), tl in truth.layers.items():
                name = truth.operator_names[op_id]
                true_dead = {int(h3.str_to_int(c)) for c in tl.dead_cells} & inside
                if not true_dead:
                    continue
                res: dict[str, tuple[int, float, float]] = {}
                layer_sites = sites[(name, tech)]
                with threadpool_limits(limits=1, user_api="blas"):
                    for v, d in drives.items():
                        sel = (d.park == park.id) & (d.operator == name) & (d.tech == tech)
                        s = d.take(sel)
                        found, _ = dead_map(s, inside, layer_sites, threshold)
                        res[f"uniform {v}"] = (len(s), *iou(found, true_dead))
                    d = drives[args.initial_vehicles]
                    s = d.take((d.park == park.id) & (d.operator == name) & (d.tech == tech))
                    for r in range(args.rounds):
                        _, (layer, uncertain) = dead_map(s, inside, layer_sites, threshold)
                        plan = plan_survey(layer, max_waypoints=args.waypoints, uncertain_measured=uncertain)  # type: ignore[attr-defined]
                        route = [(w.lon, w.lat) for w in plan.waypoints]
                        extra = drive_route(
                            env, route, park=park.id, operator_id=op_id, operator=name, tech=tech,
                            dev=f"plan-{r}", rng=rng,
                        )  # fmt: skip
                        s = _concat(s, extra)
                    found, _ = dead_map(s, inside, layer_sites, threshold)
                    res["plan"] = (len(s), *iou(found, true_dead))
                rows.append((f"{park.id} {name} {tech}", seed, res))
                print(
                    f"seed {seed} {park.id:<14} {name:<19} {tech:<3} "
                    + " ".join(f"{k}: {n:6d} IoU {i / u if u else 1.0:.3f}" for k, (n, i, u) in res.items()),
                    flush=True,
                )
    print("\nsummary over layers with true holes (samples are the layer's readings)")
    agg: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for _, _, res in rows:
        for k, val in res.items():
            agg[k].append(val)
    full = float(sum(n for n, _, _ in agg["uniform 3"]))
    for k, vals in agg.items():
        a = np.array(vals, dtype=float)
        per_layer = np.where(a[:, 2] > 0, a[:, 1] / np.maximum(a[:, 2], 1e-9), 1.0)
        print(
            f"{k:<10} samples {a[:, 0].sum():9.0f} ({a[:, 0].sum() / full:6.1%} of uniform 3)  "
            f"IoU pooled {a[:, 1].sum() / a[:, 2].sum():.3f}  mean {per_layer.mean():.3f}"
        )

    def layer_iou(k: str) -> np.ndarray:
        a = np.array([res[k] for _, _, res in rows], dtype=float)
        return np.where(a[:, 2] > 0, a[:, 1] / np.maximum(a[:, 2], 1e-9), 1.0)

    print(
        f"plan IoU >= uniform-3 IoU in {np.mean(layer_iou('plan') >= layer_iou('uniform 3') - 1e-9):.0%} of {len(rows)} layers"
    )
    print(
        f"\nrun time {time.perf_counter() - t0:.1f} s; load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
