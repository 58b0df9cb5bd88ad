"""The dead-zone test per cell: states, confidence, causes, calibration, GNSS edges, zones (table-style)."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from analytics.calibration import estimate_offsets
from analytics.deadzones import (
    DetectOptions,
    assess_cells,
    find_zones,
    grouped_median_below_confidence,
    median_below_confidence,
    sign_test_confidence,
)
from storage.query import CellSamples

CELL = h3.latlng_to_cell(20.85, 106.76, 10)
CENTRE = h3.cell_to_latlng(CELL)


def _samples(
    rsrp: list[float],
    *,
    sinr: list[float] | None = None,
    cell: str = CELL,
    devs: list[str] | None = None,
    at: tuple[float, float] | None = None,
) -> CellSamples:
    n = len(rsrp)
    lat, lon = at or h3.cell_to_latlng(cell)
    return CellSamples(
        park=np.array(["p"] * n, dtype=object),
        h3=np.full(n, h3.str_to_int(cell), dtype=np.uint64),
        operator=np.array(["Op"] * n, dtype=object),
        tech=np.array(["LTE"] * n, dtype=object),
        dev=np.array(devs or ["d1"] * n, dtype=object),
        ts_ms=np.arange(n, dtype=np.int64) * 1000,
        lat=np.full(n, lat),
        lon=np.full(n, lon),
        rsrp_dbm=np.array(rsrp, dtype=np.float64),
        sinr_db=np.array(sinr if sinr is not None else [10.0] * n, dtype=np.float64),
    )


def _concat(*parts: CellSamples) -> CellSamples:
    names = CellSamples.__dataclass_fields__
    return CellSamples(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})


def test_sign_test_confidence() -> None:
    assert sign_test_confidence(5, 5) == pytest.approx(1 - 1 / 32)
    assert sign_test_confidence(3, 3) == pytest.approx(0.875)
    assert sign_test_confidence(0, 0) == 0.0
    assert sign_test_confidence(4, 2) == pytest.approx(1 - 11 / 16)


def test_signed_rank_weighs_distance() -> None:
    rng = np.random.default_rng(3)
    far = rng.normal(-5.0, 4.0, 30)
    near = rng.normal(-0.2, 4.0, 30)
    assert median_below_confidence(far) > 0.99
    assert 0.1 < median_below_confidence(near) < 0.9
    assert median_below_confidence(-far) < 0.01


def test_grouped_test_equals_the_test_of_each_group() -> None:
    rng = np.random.default_rng(7)
    sizes = [0, 1, 3, 9, 10, 11, 25, 40, 12, 10]
    parts, groups = [], []
    for g, n in enumerate(sizes):
        # Rounded to 0.5 dB: ties and exact zeros, as readings reported in steps have them.
        values = np.round(rng.normal(rng.uniform(-3, 3), 4.0, n) * 2) / 2
        if g == 8:
            values[:] = 0.0  # every reading at the threshold
        if g == 9:
            values[:] = -2.5  # no spread at all
        parts.append(values)
        groups.append(np.full(n, g, dtype=np.int64))
    diff = np.concatenate(parts)
    group = np.concatenate(groups)
    shuffle = rng.permutation(len(diff))
    got = grouped_median_below_confidence(group[shuffle], diff[shuffle], len(sizes))
    want = [median_below_confidence(v) for v in parts]
    assert got.tolist() == want  # the same figures bit for bit, not approximately


def test_each_cell_is_assessed_on_its_own_readings() -> None:
    rng = np.random.default_rng(11)
    cells = [CELL, *sorted(h3.grid_ring(CELL, 1))[:3]]
    parts = []
    for i, cell in enumerate(cells):
        for operator, tech in (("Op", "LTE"), ("Other", "NR")):
            n = 6 + 7 * i
            s = _samples(
                list(rng.normal(-113.0 - i, 4.0, n).round(1)),
                sinr=list(rng.normal(1.0, 3.0, n)),
                cell=cell,
                devs=[f"d{j % 3}" for j in range(n)],
            )
            parts.append(
                CellSamples(
                    **{
                        **{k: getattr(s, k) for k in CellSamples.__dataclass_fields__},
                        "operator": np.array([operator] * n, dtype=object),
                        "tech": np.array([tech] * n, dtype=object),
                    }
                )
            )
    together = assess_cells(_concat(*parts[::-1]), options=DetectOptions(calibrate=False))
    assert len(together) == len(parts)
    row = together.lookup()
    columns = [k for k in together.__dataclass_fields__ if k != "offsets"]
    for part in parts:
        alone = assess_cells(part, options=DetectOptions(calibrate=False))
        i = row[(str(alone.park[0]), int(alone.h3[0]), str(alone.operator[0]), str(alone.tech[0]))]
        for name in columns:
            assert getattr(together, name)[i] == getattr(alone, name)[0] or (
                name == "sinr_median_db" and np.isnan(getattr(alone, name)[0])
            ), name


@pytest.mark.parametrize(
    ("rsrp", "sinr", "state", "cause"),
    [
        ([-120.0] * 10, None, "dead", "coverage"),
        ([-140.0] * 10, None, "dead", "no_service"),
        ([-105.0] * 10, None, "covered", None),  # poor is a map class, not dead
        ([-100.0] * 10, [-3.0] * 10, "interference", "interference"),  # bad SINR is never dead
        ([-120.0] * 3, None, "uncertain", None),  # too few readings for 90 %
        ([-120.0, -110.0] * 6, None, "uncertain", None),
        ([-115.0] * 5, None, "dead", "coverage"),  # the hole threshold is inclusive
    ],
)
def test_cell_states(rsrp: list[float], sinr: list[float] | None, state: str, cause: str | None) -> None:
    a = assess_cells(_samples(rsrp, sinr=sinr))
    assert len(a) == 1
    assert (a.state[0], a.cause[0]) == (state, cause)
    assert 0.0 <= a.confidence[0] <= 1.0
    if state in ("dead", "covered", "interference"):
        assert a.confidence[0] >= 0.9


def test_max_class_poor_widens_dead() -> None:
    a = assess_cells(_samples([-105.0] * 10), options=DetectOptions(max_class="poor"))
    assert a.state[0] == "dead" and a.threshold_dbm[0] == -100.0
    with pytest.raises(ValueError, match="max_class"):
        DetectOptions(max_class="excellent")


def test_readings_near_the_border_are_left_out() -> None:
    corner = h3.cell_to_boundary(CELL)[0]
    # Nudge the vertex 3 m towards the centre so h3 still bins it in CELL.
    lat = corner[0] + (CENTRE[0] - corner[0]) * 0.05
    lon = corner[1] + (CENTRE[1] - corner[1]) * 0.05
    assert h3.latlng_to_cell(lat, lon, 10) == CELL
    a = assess_cells(_samples([-130.0] * 20, at=(lat, lon)))
    assert a.state[0] == "uncertain" and a.tested[0] == 0 and a.samples[0] == 20
    b = assess_cells(_samples([-130.0] * 20, at=(lat, lon)), options=DetectOptions(gnss_error_m=0.0))
    assert b.state[0] == "dead"


def test_device_offsets_are_estimated_and_removed() -> None:
    rng = np.random.default_rng(7)
    cells, devs, vals = [], [], []
    truth = {0: 3.0, 1: -3.0, 2: 0.0}
    for c in range(12):
        level = rng.uniform(-120, -80)
        for d, off in truth.items():
            for _ in range(5):
                cells.append(c)
                devs.append(d)
                vals.append(level + off + rng.normal(0, 1.0))
    offsets, shared = estimate_offsets(np.array(cells), np.array(devs), np.array(vals), 3)
    assert shared.tolist() == [12, 12, 12]
    assert offsets == pytest.approx([3.0, -3.0, 0.0], abs=0.6)
    # Through assess_cells: a device reading 6 dB low no longer makes a -112 dBm cell dead.
    other = h3.grid_ring(CELL, 1)[0]
    parts = [
        _samples([-100.0] * 6, cell=other, devs=["low"] * 6),
        _samples([-94.0] * 6, cell=other, devs=["ok"] * 6),
        _samples([-118.0] * 12, devs=["low"] * 12),
        _samples([-112.0] * 3, devs=["ok"] * 3),
    ]
    a = assess_cells(_concat(*parts))
    row = a.lookup()[("p", h3.str_to_int(CELL), "Op", "LTE")]
    assert a.state[row] == "covered"
    offs = {o.dev: o.offset_db for o in a.offsets}
    assert offs["low"] == pytest.approx(-3.0) and offs["ok"] == pytest.approx(3.0)
    raw = assess_cells(_concat(*parts), options=DetectOptions(calibrate=False))
    assert raw.state[raw.lookup()[("p", h3.str_to_int(CELL), "Op", "LTE")]] == "dead"


def test_a_reference_device_anchors_its_fleet() -> None:
    rng = np.random.default_rng(5)
    cells, devs, vals = [], [], []
    # Devices 0-2 share cells (their mean offset is +2 dB, which comparing them cannot reveal);
    # devices 3-4 measured elsewhere and share cells only with each other.
    truth = {0: 0.0, 1: 4.0, 2: 2.0, 3: 1.0, 4: -1.0}
    for c in range(20):
        level = rng.uniform(-120, -80)
        for d in (0, 1, 2) if c < 12 else (3, 4):
            for _ in range(5):
                cells.append(c)
                devs.append(d)
                vals.append(level + truth[d] + rng.normal(0, 1.0))
    args = (np.array(cells), np.array(devs), np.array(vals), 5)
    fleet, _ = estimate_offsets(*args)
    assert fleet[:3] == pytest.approx([-2.0, 2.0, 0.0], abs=0.5)  # relative to the fleet's mean only
    anchored, shared = estimate_offsets(*args, known={0: 0.0})
    assert anchored[:3] == pytest.approx([0.0, 4.0, 2.0], abs=0.5)  # absolute: device 0 is calibrated
    assert anchored[0] == 0.0
    assert anchored[3:] == pytest.approx([1.0, -1.0], abs=0.5)  # the other group still sums to zero
    assert shared.tolist() == [12, 12, 12, 8, 8]
    # Through assess_cells: the reference is reported as such, and the others follow it.
    places = sorted(h3.grid_disk(CELL, 3))
    samples = _concat(
        *(
            _samples([float(v)], cell=places[c], devs=[f"d{d}"])
            for c, d, v in zip(cells, devs, vals, strict=True)
        )
    )
    a = assess_cells(samples, options=DetectOptions(reference_offsets_db=(("d0", 0.0),)))
    offs = {o.dev: o for o in a.offsets}
    assert offs["d0"].reference and offs["d0"].offset_db == 0.0 and not offs["d1"].reference
    assert offs["d1"].offset_db == pytest.approx(4.0, abs=0.5)
    assert offs["d1"].as_dict()["reference"] is False


def test_zones_join_neighbours_and_carry_their_evidence() -> None:
    ring = h3.grid_ring(CELL, 1)
    far = h3.latlng_to_cell(20.90, 106.70, 10)
    parts = [_samples([-125.0] * 8, cell=c) for c in (CELL, ring[0], far)]
    parts.append(_samples([-140.0] * 8, cell=ring[3]))
    parts.append(_samples([-90.0] * 8, cell=ring[1]))
    zones = find_zones(assess_cells(_concat(*parts)))
    assert [len(z.cells) for z in zones] == [3, 1]
    z = zones[0]
    assert z.cause == "coverage" and z.kind == "dead"
    assert z.samples == 24 and z.devices == 1 and 0.9 <= z.confidence < 1.0
    assert z.worst_rsrp_dbm == -140.0 and z.median_rsrp_dbm == -125.0
    props = z.feature(1)["properties"]
    assert props["cells"] == sorted(props["cells"]) and props["name"].startswith("p · Op · LTE · #1 · ")
    assert zones[1].cells == (h3.str_to_int(far),)
