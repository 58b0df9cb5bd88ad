"""Zone progress between two periods: every status on hand-built zones and cell tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import h3
import numpy as np
import pytest

from analytics.deadzones import CellAssessment, DeadZone
from analytics.zone_changes import STATUSES, compare_zones

ORIGIN = h3.latlng_to_cell(20.80, 106.75, 10)


def cells(n: int) -> tuple[int, ...]:
    """``n`` cells on a grid path going east from the origin (each shares an edge with the next)."""
    far = h3.latlng_to_cell(20.80, 106.80, 10)
    return tuple(h3.str_to_int(c) for c in h3.grid_path_cells(ORIGIN, far)[:n])


def zone(cs: Sequence[int], confidence: float = 0.95, operator: str = "Alpha") -> DeadZone:
    return DeadZone(
        kind="dead",
        park="p1",
        operator=operator,
        tech="LTE",
        cells=tuple(sorted(cs)),
        cause="coverage",
        confidence=confidence,
        area_m2=0.0,
        worst_rsrp_dbm=-125.0,
        median_rsrp_dbm=-120.0,
        median_sinr_db=None,
        centroid_lon=106.75,
        centroid_lat=20.80,
        samples=10,
        devices=1,
        first_seen_ms=0,
        last_seen_ms=0,
    )


def assessment(states: dict[int, tuple[str, float]], operator: str = "Alpha") -> CellAssessment:
    n = len(states)
    return CellAssessment(
        park=np.array(["p1"] * n, dtype=object),
        h3=np.array(list(states), dtype=np.uint64),
        operator=np.array([operator] * n, dtype=object),
        tech=np.array(["LTE"] * n, dtype=object),
        state=np.array([s for s, _ in states.values()], dtype=object),
        confidence=np.array([c for _, c in states.values()], dtype=np.float64),
    )


LINE = cells(6)


def test_fixture_cells_form_a_connected_line() -> None:
    assert len(set(LINE)) == 6
    for a, b in itertools.pairwise(LINE):
        assert h3.are_neighbor_cells(h3.int_to_str(a), h3.int_to_str(b))


def status_of(
    before: list[DeadZone],
    after: list[DeadZone],
    now: dict[int, tuple[str, float]],
    then: dict[int, tuple[str, float]] | None = None,
) -> list[tuple[str, float]]:
    changes = compare_zones(before, after, cells_before=assessment(then or {}), cells_after=assessment(now))
    return [(c.status, round(c.confidence, 3)) for c in changes]


def test_new_zone_says_whether_its_cells_were_measured_before() -> None:
    now = {c: ("dead", 0.97) for c in LINE[:2]}
    changes = compare_zones(
        [],
        [zone(LINE[:2], 0.97)],
        cells_before=assessment({LINE[0]: ("covered", 0.95)}),
        cells_after=assessment(now),
    )
    assert [(c.status, c.confidence) for c in changes] == [("new", 0.97)]
    assert changes[0].previously_surveyed_share == pytest.approx(0.5, abs=0.01)


def test_persisting_when_the_same_cells_are_dead_again() -> None:
    now = {c: ("dead", 0.92) for c in LINE[:3]}
    assert status_of([zone(LINE[:3])], [zone(LINE[:3], 0.92)], now) == [("persisting", 0.92)]


def test_shrunk_only_by_cells_shown_covered() -> None:
    now = {**{c: ("dead", 0.96) for c in LINE[:2]}, LINE[2]: ("covered", 0.91), LINE[3]: ("covered", 0.99)}
    assert status_of([zone(LINE[:4])], [zone(LINE[:2], 0.96)], now) == [("shrunk", 0.91)]


def test_cells_nobody_measured_again_do_not_shrink_a_zone() -> None:
    now = {c: ("dead", 0.96) for c in LINE[:2]}  # LINE[2:4] not driven in the new period
    changes = compare_zones(
        [zone(LINE[:4])], [zone(LINE[:2], 0.96)], cells_before=assessment({}), cells_after=assessment(now)
    )
    assert [c.status for c in changes] == ["persisting"]
    assert changes[0].unverified == frozenset(LINE[2:4])
    assert changes[0].cleared == frozenset()


def test_grown_when_more_cells_are_dead() -> None:
    now = {c: ("dead", 0.93) for c in LINE[:5]}
    assert status_of([zone(LINE[:2])], [zone(LINE[:5], 0.93)], now) == [("grown", 0.93)]


def test_resolved_needs_confident_coverage_where_the_zone_was() -> None:
    now = {c: ("covered", 0.9 + i / 100) for i, c in enumerate(LINE[:3])}
    assert status_of([zone(LINE[:3])], [], now) == [("resolved", 0.9)]


def test_not_resurveyed_when_nobody_drove_there() -> None:
    assert status_of([zone(LINE[:3], 0.94)], [], {}) == [("not_resurveyed", 0.94)]


def test_not_resurveyed_when_the_new_readings_cannot_decide() -> None:
    now = {LINE[0]: ("covered", 0.95), LINE[1]: ("uncertain", 0.4), LINE[2]: ("uncertain", 0.3)}
    assert [s for s, _ in status_of([zone(LINE[:3])], [], now)] == ["not_resurveyed"]


def test_a_split_zone_is_one_group_and_operators_stay_apart() -> None:
    now = {LINE[0]: ("dead", 0.95), LINE[1]: ("covered", 0.95), LINE[2]: ("dead", 0.95)}
    before = [zone(LINE[:3]), zone(LINE[:3], operator="Beta")]
    after = [zone(LINE[:1]), zone(LINE[2:3])]
    changes = compare_zones(before, after, cells_before=assessment({}), cells_after=assessment(now))
    assert sorted((c.operator, c.status) for c in changes) == [
        ("Alpha", "shrunk"),
        ("Beta", "not_resurveyed"),
    ]
    alpha = next(c for c in changes if c.operator == "Alpha")
    assert len(alpha.after) == 2
    assert alpha.feature()["properties"]["cleared_area_m2"] > 0


def test_every_status_is_reachable() -> None:
    seen = {
        status_of([], [zone(LINE[:1])], {LINE[0]: ("dead", 0.9)})[0][0],
        status_of([zone(LINE[:1])], [zone(LINE[:1])], {LINE[0]: ("dead", 0.9)})[0][0],
        status_of([zone(LINE[:2])], [zone(LINE[:1])], {LINE[0]: ("dead", 0.9), LINE[1]: ("covered", 0.9)})[0][
            0
        ],
        status_of([zone(LINE[:1])], [zone(LINE[:2])], {LINE[0]: ("dead", 0.9), LINE[1]: ("dead", 0.9)})[0][0],
        status_of([zone(LINE[:1])], [], {LINE[0]: ("covered", 0.9)})[0][0],
        status_of([zone(LINE[:1])], [], {})[0][0],
    }
    assert seen == set(STATUSES)
