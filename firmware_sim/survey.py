"""Drive-test surveys of a scenario: noisy street samples of the radio field, as modems report them.

Vehicles drive a grid of streets through every park (streets ``street_spacing_m`` apart, each
street's spacing drawn at random), and every vehicle carries one modem per operator and
technology. Each reading is the radio model's noise-free serving RSRP/SINR at the true position
plus what a real drive test adds:

* **GNSS error**: the reported position is off by ``gnss_error_m`` (drawn per reading, uniform in
  the range, random direction); the H3 cell comes from the reported position, as the ingester
  bins it;
* **fast fading**: Gaussian in dB, ``fading_sigma_db`` (per reading, on RSRP and SINR);
* **device offset**: each modem reads ``offset_db`` high or low (uniform in ``±device_offset_db``,
  fixed per modem); the first ``reference_vehicles`` vehicles of a park carry calibrated receivers
  instead (a drive-test scanner), whose residual offset is uniform in ``±reference_error_db`` and
  which the survey names in :attr:`Survey.reference_devices` (what a planner knows about them);
* **sampling**: one reading every ``step_m`` metres along the street (uniform in the range);
* **no service**: where the modem's own reading falls below ``service_floor_dbm`` it finds no
  cell: a ``no_service`` reading (RSRP ``-140``, no SINR), so holes show as stretches of no service.

:data:`EASY` and :data:`HARD` are the two settings of ``bench/coverage_accuracy.py`` and of the
tests. The survey never looks at the truth (:mod:`firmware_sim.truth`) or the detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import h3
import numpy as np
import numpy.typing as npt

from contract.readings import NO_SERVICE_RSRP_DBM
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.scenario import Scenario


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveySetting:
    """How noisy a drive test is (see the module docstring)."""

    name: str
    vehicles: int = 3
    street_spacing_m: tuple[float, float] = (60.0, 120.0)
    step_m: tuple[float, float] = (10.0, 30.0)
    gnss_error_m: tuple[float, float] = (5.0, 10.0)
    fading_sigma_db: float = 4.0
    device_offset_db: float = 3.0
    service_floor_dbm: float = -124.0
    reference_vehicles: int = 0
    reference_error_db: float = 0.5


EASY: Final = SurveySetting(
    name="easy", gnss_error_m=(0.0, 3.0), fading_sigma_db=1.5, device_offset_db=1.0, step_m=(10.0, 15.0)
)
HARD: Final = SurveySetting(name="hard")
HARD_REFERENCE: Final = SurveySetting(name="hard-ref", reference_vehicles=1)
"""The hard setting with one of a park's three vehicles carrying a calibrated receiver (every other
draw as in :data:`HARD`, so a seed drives the same streets with the same fading)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Survey:
    """Readings of a survey, one row per reading (numpy columns of equal length)."""

    park: npt.NDArray[np.object_]
    operator: npt.NDArray[np.object_]
    """The operator's network name, as ``AT+COPS?`` and so the stored readings carry it."""
    tech: npt.NDArray[np.object_]
    dev: npt.NDArray[np.object_]
    ts_ms: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    """The reported position (with the GNSS error): what the detector sees."""
    true_lat: npt.NDArray[np.float64]
    true_lon: npt.NDArray[np.float64]
    """Where the vehicle really was (for scoring ceilings only; never given to the detector)."""
    h3: npt.NDArray[np.uint64]
    rsrp_dbm: npt.NDArray[np.float64]
    rsrq_db: npt.NDArray[np.float64]
    sinr_db: npt.NDArray[np.float64]
    no_service: npt.NDArray[np.bool_]
    device_offsets_db: dict[str, float]
    """The offset each modem really has (what calibration should find)."""
    reference_devices: tuple[str, ...] = ()
    """The calibrated receivers (offset taken as 0 by whoever reads the survey)."""

    def __len__(self) -> int:
        return len(self.rsrp_dbm)


def _streets(
    park_box: tuple[float, float, float, float], rng: np.random.Generator, s: SurveySetting
) -> list[tuple[float, float, float, float]]:
    """Street segments (x0, y0, x1, y1) in metres across a box (min_x, min_y, max_x, max_y)."""
    x0, y0, x1, y1 = park_box
    out: list[tuple[float, float, float, float]] = []
    x = x0 + rng.uniform(0, s.street_spacing_m[1])
    while x < x1:
        out.append((x, y0, x, y1))
        x += rng.uniform(*s.street_spacing_m)
    y = y0 + rng.uniform(0, s.street_spacing_m[1])
    while y < y1:
        out.append((x0, y, x1, y))
        y += rng.uniform(*s.street_spacing_m)
    return out


def _drive(
    streets: list[tuple[float, float, float, float]], rng: np.random.Generator, s: SurveySetting
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    xs: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.float64]] = []
    for ax, ay, bx, by in streets:
        length = float(np.hypot(bx - ax, by - ay))
        steps = rng.uniform(*s.step_m, size=int(length / s.step_m[0]) + 2)
        along = np.cumsum(steps) - steps[0] + rng.uniform(0, s.step_m[0])
        along = along[along <= length]
        xs.append(ax + (bx - ax) * along / length)
        ys.append(ay + (by - ay) * along / length)
    return np.concatenate(xs), np.concatenate(ys)


def drive_test(
    scenario: Scenario,
    setting: SurveySetting,
    *,
    seed: int,
    env: RadioEnvironment | None = None,
    resolution: int = 10,
    start_ms: int = 1_793_577_600_000,
) -> Survey:
    """A drive test of every park for every operator and technology of ``scenario``."""
    env = env or RadioEnvironment(scenario)
    rng = np.random.default_rng(seed)
    names = {op.id: op.name for op in scenario.operators}
    cols: dict[str, list[npt.NDArray[np.generic]]] = {k: [] for k in Survey.__dataclass_fields__}
    offsets: dict[str, float] = {}
    references: list[str] = []
    for park in scenario.parks:
        lats = [p[0] for p in park.boundary]
        lons = [p[1] for p in park.boundary]
        bx0, by0 = env.projection.to_xy(min(lats), min(lons))
        bx1, by1 = env.projection.to_xy(max(lats), max(lons))
        for v in range(setting.vehicles):
            streets = _streets((float(bx0), float(by0), float(bx1), float(by1)), rng, setting)
            x, y = _drive(streets, rng, setting)
            n = len(x)
            true_lat, true_lon = env.projection.to_latlon(x, y)
            err = rng.uniform(*setting.gnss_error_m, size=n)
            ang = rng.uniform(0, 2 * np.pi, size=n)
            rep_lat, rep_lon = env.projection.to_latlon(x + err * np.cos(ang), y + err * np.sin(ang))
            cells = np.array(
                [
                    h3.str_to_int(h3.latlng_to_cell(a, b, resolution))
                    for a, b in zip(rep_lat, rep_lon, strict=True)
                ],
                dtype=np.uint64,
            )
            ts = start_ms + np.arange(n, dtype=np.int64) * 2000 + v * 10_000_000
            for op_id, tech in env.layers():
                dev = f"{park.id}-veh{v}-{op_id}-{tech}".lower()
                offsets[dev] = float(rng.uniform(-setting.device_offset_db, setting.device_offset_db))
                if v < setting.reference_vehicles:  # same draw, scaled: the other draws stay as they are
                    offsets[dev] *= setting.reference_error_db / max(setting.device_offset_db, 1e-9)
                    references.append(dev)
                m = env.measure(true_lat, true_lon, operator=op_id, tech=tech)
                fade = rng.normal(0.0, setting.fading_sigma_db, size=n)
                rsrp = np.where(np.isnan(m.rsrp_dbm), -np.inf, m.rsrp_dbm) + offsets[dev] + fade
                lost = rsrp < setting.service_floor_dbm
                cols["park"].append(np.full(n, park.id, dtype=object))
                cols["operator"].append(np.full(n, names[op_id], dtype=object))
                cols["tech"].append(np.full(n, tech, dtype=object))
                cols["dev"].append(np.full(n, dev, dtype=object))
                cols["ts_ms"].append(ts)
                cols["lat"].append(rep_lat)
                cols["lon"].append(rep_lon)
                cols["true_lat"].append(np.asarray(true_lat, dtype=np.float64))
                cols["true_lon"].append(np.asarray(true_lon, dtype=np.float64))
                cols["h3"].append(cells)
                cols["rsrp_dbm"].append(np.where(lost, NO_SERVICE_RSRP_DBM, np.round(rsrp, 1)))
                cols["rsrq_db"].append(np.where(lost, np.nan, np.round(m.rsrq_db, 1)))
                sinr = m.sinr_db + rng.normal(0.0, setting.fading_sigma_db / 2, size=n)
                cols["sinr_db"].append(np.where(lost, np.nan, np.round(np.clip(sinr, -23.0, 40.0), 1)))
                cols["no_service"].append(lost)
    arrays = {
        k: np.concatenate(v) for k, v in cols.items() if k not in ("device_offsets_db", "reference_devices")
    }
    return Survey(**arrays, device_offsets_db=offsets, reference_devices=tuple(references))
