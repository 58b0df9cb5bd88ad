"""The grouping primitives and the grouped dead-zone code built on them give the answers of the
formulations they replaced (multi-key lexsorts, np.unique, per-pair Python loops), bit for bit."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import h3
import numpy as np
import pytest

from analytics.calibration import estimate_offsets
from analytics.coverage import cell_center
from analytics.deadzones import (
    _cell_edges,
    _edge_distance_m,
    _grouped_median_confidences,
    assess_cells,
    grouped_median_below_confidence,
)
from analytics.grouped import dense_ids, distinct_count, group_value_order, stable_order, string_codes
from storage.query import CellSamples


@pytest.mark.parametrize("n_groups", [1, 300, 70_000, 5_000_000_000])
def test_group_value_order_sorts_like_lexsort(n_groups: int) -> None:
    rng = np.random.default_rng(n_groups % 1000)
    n = 200_000
    group = rng.integers(0, n_groups, n)
    values = np.round(rng.normal(0, 5, n), 1)  # many ties, 0.0 and -0.0 among them
    values[rng.integers(0, n, 500)] = np.nan
    got = group_value_order(group, values)
    want = np.lexsort((values, group))
    assert sorted(got.tolist()) == list(range(n))  # a permutation
    assert group[got].tolist() == group[want].tolist()
    assert values[got].tobytes() == values[want].tobytes()  # NaN last within each group


@pytest.mark.parametrize("top", [2, 65_535, 65_536, 4_000_000, 1 << 40])
def test_stable_order_is_a_stable_argsort(top: int) -> None:
    rng = np.random.default_rng(3)
    group = rng.integers(0, top + 1, 100_000)
    group[:10] = top
    assert stable_order(group).tolist() == np.argsort(group, kind="stable").tolist()


@pytest.mark.parametrize("span", [50, 10_000_000_000])
def test_dense_ids_number_keys_in_order(span: int) -> None:
    key = np.random.default_rng(1).integers(0, span, 50_000)
    ids, n = dense_ids(key)
    uniq, inv = np.unique(key, return_inverse=True)
    assert n == len(uniq)
    assert ids.tolist() == inv.ravel().tolist()
    assert dense_ids(np.zeros(0, dtype=np.int64))[1] == 0


def test_distinct_count_per_group() -> None:
    rng = np.random.default_rng(2)
    group = rng.integers(0, 40, 5_000)
    codes = rng.integers(0, 9, 5_000)
    want = [len(set(codes[group == g].tolist())) for g in range(45)]
    assert distinct_count(group, codes, 45).tolist() == want


def _codes_before(values: Any) -> tuple[list[int], list[str]]:
    """The previous formulation: every row converted, then numbered in sorted order."""
    items = [str(v) for v in values.tolist()]
    uniq = sorted(set(items))
    return [uniq.index(v) for v in items], uniq


def test_string_codes_number_values_in_sorted_string_order() -> None:
    values = np.array(["b", "a", None, "c", "a", "B", "", None], dtype=object)
    codes, names = string_codes(values)
    assert (codes.tolist(), names) == _codes_before(values)
    codes, names = string_codes(values, none_as="")
    assert (codes.tolist(), names) == _codes_before(
        np.array(["" if v is None else v for v in values], dtype=object)
    )
    assert names == ["", "B", "a", "b", "c"]


def _offsets_before(
    cell: Any, dev: Any, rsrp: Any, n_devices: int, known: dict[int, float]
) -> tuple[Any, Any]:
    """estimate_offsets as it was: per-cell dicts, per-pair lists, np.median of each pair."""
    offsets = np.zeros(n_devices)
    for d, off in known.items():
        offsets[d] = off
    shared = np.zeros(n_devices, dtype=np.int64)
    key = cell * n_devices + dev
    order = np.lexsort((rsrp, key))
    k_sorted, v_sorted = key[order], rsrp[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(k_sorted)])
    enough = counts >= 3
    starts, counts = starts[enough], counts[enough]
    medians = (v_sorted[starts + (counts - 1) // 2] + v_sorted[starts + counts // 2]) / 2.0
    c_of, d_of = np.divmod(k_sorted[starts], n_devices)
    per_cell: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for c, d, m in zip(c_of.tolist(), d_of.tolist(), medians.tolist(), strict=True):
        per_cell[c].append((d, m))
    diffs: dict[tuple[int, int], list[float]] = defaultdict(list)
    for entries in per_cell.values():
        if len(entries) < 2:
            continue
        for i, (da, ma) in enumerate(entries):
            shared[da] += 1
            for db, mb in entries[i + 1 :]:
                diffs[(da, db)].append(ma - mb)
    pairs = list(diffs)
    rows = np.zeros((len(pairs) + 1, n_devices))
    rhs = np.zeros(len(pairs) + 1)
    weights = np.ones(len(pairs) + 1)
    for i, (a, b) in enumerate(pairs):
        rows[i, a], rows[i, b] = 1.0, -1.0
        rhs[i] = float(np.median(diffs[(a, b)]))
        weights[i] = np.sqrt(len(diffs[(a, b)]))
    return (rows, rhs, weights, pairs), shared


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_offsets_builds_the_same_system_as_the_pairwise_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_devices, n = 12, 20_000
    cell = rng.integers(0, 150, n)
    dev = rng.integers(0, n_devices, n)
    dev[cell < 10] = 11  # cells seen by one device only
    rsrp = np.round(rng.normal(-100, 8, n), 1) + dev * 0.7
    for known in ({}, {3: 0.0}, {3: 0.0, 11: 1.5}):
        (rows, rhs, weights, pairs), shared = _offsets_before(cell, dev, rsrp, n_devices, known)
        assert len(pairs) > 30
        offsets, got_shared = estimate_offsets(cell, dev, rsrp, n_devices, known=known)
        assert got_shared.tolist() == shared.tolist()
        if not known:
            rows[-1, shared > 0] = 1.0
            weights[-1] = 100.0
            sol, *_ = np.linalg.lstsq(rows * weights[:, None], rhs * weights, rcond=None)
            want = np.zeros(n_devices)
            want[shared > 0] = sol[shared > 0]
            assert offsets.tobytes() == want.tobytes()  # bit for bit
        else:
            assert [offsets[d] for d in known] == list(known.values())


def test_estimate_offsets_without_shared_cells() -> None:
    offsets, shared = estimate_offsets(
        np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 1]), np.full(6, -90.0), 2, known={1: 2.0}
    )
    assert offsets.tolist() == [0.0, 2.0] and shared.tolist() == [0, 0]


def test_the_covered_test_is_the_dead_test_of_the_negated_differences() -> None:
    rng = np.random.default_rng(4)
    group = rng.integers(0, 300, 30_000)
    diff = np.round(rng.normal(0.5, 6, 30_000) * 2) / 2  # ties and zeros
    group[:40] = 299  # a small group: the sign test
    below, above = _grouped_median_confidences(group, diff, 301)
    assert below.tobytes() == grouped_median_below_confidence(group, diff, 301).tobytes()
    assert above.tobytes() == grouped_median_below_confidence(group, -diff, 301).tobytes()


def test_edge_distance_equals_the_one_array_formula() -> None:
    cells = np.array(
        [h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(20.85, 106.76, 10), 3)], dtype=np.uint64
    )
    rng = np.random.default_rng(6)
    idx = rng.integers(0, len(cells), 5_000)
    centre = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in cells])
    lat = centre[idx, 0] + rng.uniform(-8e-4, 8e-4, len(idx))
    lon = centre[idx, 1] + rng.uniform(-8e-4, 8e-4, len(idx))
    lat[:5] = np.nan
    c_lon = np.array([cell_center(int(c))[0] for c in cells[idx]])
    c_lat = np.array([cell_center(int(c))[1] for c in cells[idx]])
    e = np.array([_cell_edges(int(c)) for c in cells[idx]])
    dx = (lon - c_lon) * 111_320.0 * np.cos(np.radians(c_lat))
    dy = (lat - c_lat) * 110_574.0
    want = (e[:, :, 2] - (e[:, :, 0] * dx[:, None] + e[:, :, 1] * dy[:, None])).min(axis=1)
    got = _edge_distance_m(cells[idx], lat, lon)
    assert got.tobytes() == want.tobytes()
    assert (got < 0).any() and (got > 10).any()  # readings outside and well inside


def _random_samples(seed: int, n: int = 30_000) -> CellSamples:
    rng = np.random.default_rng(seed)
    base = h3.latlng_to_cell(20.85, 106.76, 10)
    cells = np.array([h3.str_to_int(c) for c in h3.grid_disk(base, 4)], dtype=np.uint64)
    idx = rng.integers(0, len(cells), n)
    centre = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in cells])
    operator = np.array(["Viettel", "MobiFone", "Vinaphone"], dtype=object)[rng.integers(0, 3, n)]
    tech = np.array(["LTE", "NR", "WIFI"], dtype=object)[rng.choice(3, n, p=[0.6, 0.35, 0.05])]
    dev = np.array(["m0", "m1", "m2", "m3", None, "m5"], dtype=object)[rng.integers(0, 6, n)]
    rsrp = np.round(rng.normal(-108, 10, n), 1) + np.where(dev == "m1", 4.0, 0.0)
    rsrp[idx % 7 == 0] -= 15.0  # some holes
    rsrp[rng.integers(0, n, n // 50)] = -140.0  # no service
    lat = centre[idx, 0] + rng.uniform(-4e-4, 4e-4, n)
    lon = centre[idx, 1] + rng.uniform(-4e-4, 4e-4, n)
    lat[:30] = np.nan
    sinr = np.round(rng.normal(3, 5, n), 1)
    sinr[rng.integers(0, n, n // 20)] = np.nan
    return CellSamples(
        park=np.array(["p1", "p2"], dtype=object)[rng.integers(0, 2, n)],
        h3=cells[idx],
        operator=operator,
        tech=tech,
        dev=dev,
        ts_ms=rng.integers(0, 7 * 86_400_000, n),
        lat=lat,
        lon=lon,
        rsrp_dbm=rsrp,
        sinr_db=sinr,
        cell_id=np.full(n, np.nan),
        pci=np.full(n, np.nan),
    )


def test_assess_cells_does_not_depend_on_the_order_of_the_rows() -> None:
    samples = _random_samples(8)
    a = assess_cells(samples)
    shuffled = samples.take(np.random.default_rng(9).permutation(len(samples)))
    b = assess_cells(shuffled)
    assert len(a) > 300 and set(a.state.tolist()) >= {"dead", "covered", "uncertain"}
    assert "WIFI" not in a.tech.tolist()  # no thresholds in the profile: left out
    assert a.offsets == b.offsets and len(a.offsets) > 3
    for name in a.__dataclass_fields__:
        if name == "offsets":
            continue
        x, y = getattr(a, name), getattr(b, name)
        assert (x.tolist() == y.tolist()) if x.dtype == object else (x.tobytes() == y.tobytes()), name
