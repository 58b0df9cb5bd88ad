"""Progress on eliminating dead zones: the zones of two periods compared, with evidence.

Per (park, operator, technology), the dead zones of the earlier period and of the later one are
linked where they share H3 cells; each connected group of linked zones (a zone that split or
merged stays one group) gets one status. With ``P`` the cells of the group's earlier zones,
``C`` those of its later zones, and the later period's cell test (:mod:`analytics.deadzones`):

* **cleared** cells: in ``P``, not in ``C``, and *covered* in the later period (the one-sided
  test showed at the configured confidence that their median RSRP is above the threshold;
  an interference cell has its RSRP above the threshold too and counts);
* **unverified** cells: in ``P``, not in ``C``, and not shown covered: nobody measured them
  again, or too few readings to decide. They are no evidence either way;
* **added** cells: in ``C`` and not in ``P``.

Status of a group:

| status | rule |
|---|---|
| ``new`` | no earlier zone |
| ``resolved`` | no later zone, and cleared cells make up at least ``min_resolved_share`` (default 0.5) of the earlier zones' area |
| ``not_resurveyed`` | no later zone, and less than that was shown covered |
| ``grown`` | both periods, and the area added exceeds the area cleared |
| ``shrunk`` | both periods, and the area cleared exceeds the area added |
| ``persisting`` | both periods, and neither (cells merely unverified do not shrink a zone) |

``confidence`` is the lowest confidence of the evidence the status rests on: the later zones'
(their cells are dead at that confidence) and, for ``resolved`` and ``shrunk``, the cleared
cells' covered confidence; for ``not_resurveyed`` it is the earlier zones' confidence (what we
still believe). A ``new`` zone says whether its cells were measured in the earlier period
(``previously_surveyed_share``): a zone in cells nobody drove before may be old.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import h3

from analytics.coverage import cell_area_m2, cell_str
from analytics.deadzones import CellAssessment, DeadZone

ZoneStatus = Literal["new", "persisting", "shrunk", "grown", "resolved", "not_resurveyed"]
STATUSES: Final[tuple[ZoneStatus, ...]] = (
    "new",
    "persisting",
    "shrunk",
    "grown",
    "resolved",
    "not_resurveyed",
)
MIN_RESOLVED_SHARE: Final = 0.5
_COVERED: Final = frozenset({"covered", "interference"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneChange:
    """One group of linked zones of one (park, operator, technology) and what happened to it."""

    status: ZoneStatus
    confidence: float
    park: str
    operator: str
    tech: str
    before: tuple[DeadZone, ...]
    after: tuple[DeadZone, ...]
    cells_before: frozenset[int]
    cells_after: frozenset[int]
    cleared: frozenset[int]
    unverified: frozenset[int]
    added: frozenset[int]
    previously_surveyed_share: float | None
    """For ``new``: share of its area measured (any state) in the earlier period; else None."""

    @property
    def id(self) -> str:
        zones = self.after or self.before
        return min(z.id for z in zones)

    def area_m2(self, cells: frozenset[int]) -> float:
        return float(sum(cell_area_m2(c) for c in cells))

    def feature(self) -> dict[str, Any]:
        """A GeoJSON feature of the union of the group's cells, then and now."""
        cells = self.cells_before | self.cells_after
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": h3.cells_to_geo([cell_str(c) for c in sorted(cells)]),
            "properties": {
                "status": self.status,
                "confidence": round(self.confidence, 4),
                "park": self.park,
                "operator": self.operator,
                "tech": self.tech,
                "zones_before": [z.id for z in self.before],
                "zones_after": [z.id for z in self.after],
                "area_before_m2": round(self.area_m2(self.cells_before), 1),
                "area_after_m2": round(self.area_m2(self.cells_after), 1),
                "cleared_area_m2": round(self.area_m2(self.cleared), 1),
                "unverified_area_m2": round(self.area_m2(self.unverified), 1),
                "added_area_m2": round(self.area_m2(self.added), 1),
                "cells_before": [cell_str(c) for c in sorted(self.cells_before)],
                "cells_after": [cell_str(c) for c in sorted(self.cells_after)],
                "cleared_cells": [cell_str(c) for c in sorted(self.cleared)],
                "previously_surveyed_share": None
                if self.previously_surveyed_share is None
                else round(self.previously_surveyed_share, 4),
            },
        }


def _states(a: CellAssessment) -> dict[tuple[str, str, str], dict[int, tuple[str, float]]]:
    out: dict[tuple[str, str, str], dict[int, tuple[str, float]]] = defaultdict(dict)
    for p, c, o, t, s, conf in zip(
        a.park.tolist(),
        a.h3.tolist(),
        a.operator.tolist(),
        a.tech.tolist(),
        a.state.tolist(),
        a.confidence.tolist(),
        strict=True,
    ):
        out[(str(p), str(o), str(t))][int(c)] = (str(s), float(conf))
    return out


def compare_zones(
    before: Sequence[DeadZone],
    after: Sequence[DeadZone],
    *,
    cells_before: CellAssessment,
    cells_after: CellAssessment,
    min_resolved_share: float = MIN_RESOLVED_SHARE,
) -> list[ZoneChange]:
    """Link the zones of two periods and give each group its status (module docstring).

    ``cells_before`` / ``cells_after`` are the cell tests of the two periods (the same resolution
    and options as the zones). Groups come ordered by park, operator, technology, then status
    in the order of :data:`STATUSES`, then largest area first.
    """
    if not 0.0 < min_resolved_share <= 1.0:
        raise ValueError("min_resolved_share must be in (0, 1]")
    states_after = _states(cells_after)
    states_before = _states(cells_before)
    by_group: dict[tuple[str, str, str], tuple[list[DeadZone], list[DeadZone]]] = defaultdict(
        lambda: ([], [])
    )
    for z in before:
        by_group[(z.park, z.operator, z.tech)][0].append(z)
    for z in after:
        by_group[(z.park, z.operator, z.tech)][1].append(z)
    out: list[ZoneChange] = []
    for key, (old, new) in by_group.items():
        for grp_old, grp_new in _linked(old, new):
            out.append(
                _change(
                    key,
                    grp_old,
                    grp_new,
                    states_after.get(key, {}),
                    states_before.get(key, {}),
                    min_resolved_share,
                )
            )
    rank = {s: i for i, s in enumerate(STATUSES)}
    out.sort(
        key=lambda c: (
            c.park,
            c.operator,
            c.tech,
            rank[c.status],
            -c.area_m2(c.cells_before | c.cells_after),
            c.id,
        )
    )
    return out


def _linked(old: list[DeadZone], new: list[DeadZone]) -> list[tuple[list[DeadZone], list[DeadZone]]]:
    """Connected groups of zones that share cells (union-find over old + new)."""
    zones = [*old, *new]
    parent = list(range(len(zones)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for i, z in enumerate(zones):
        for c in z.cells:
            j = owner.setdefault(c, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, tuple[list[DeadZone], list[DeadZone]]] = {}
    for i, z in enumerate(zones):
        g = groups.setdefault(find(i), ([], []))
        g[0 if i < len(old) else 1].append(z)
    return list(groups.values())


def _change(
    key: tuple[str, str, str],
    old: list[DeadZone],
    new: list[DeadZone],
    now: dict[int, tuple[str, float]],
    then: dict[int, tuple[str, float]],
    min_resolved_share: float,
) -> ZoneChange:
    p = frozenset(c for z in old for c in z.cells)
    c_ = frozenset(c for z in new for c in z.cells)
    gone = p - c_
    cleared = frozenset(c for c in gone if now.get(c, ("", 0.0))[0] in _COVERED)
    unverified = gone - cleared
    added = c_ - p

    def area(cells: frozenset[int]) -> float:
        return float(sum(cell_area_m2(c) for c in cells))

    conf_after = min((z.confidence for z in new), default=1.0)
    conf_cleared = min((now[c][1] for c in cleared), default=1.0)
    surveyed: float | None = None
    status: ZoneStatus
    if not old:
        status, confidence = "new", conf_after
        surveyed = area(frozenset(c for c in c_ if c in then)) / area(c_) if c_ else 0.0
    elif not new:
        if p and area(cleared) >= min_resolved_share * area(p):
            status, confidence = "resolved", conf_cleared
        else:
            status, confidence = "not_resurveyed", min(z.confidence for z in old)
    else:
        delta = area(added) - area(cleared)
        if delta > 0:
            status, confidence = "grown", conf_after
        elif delta < 0:
            status, confidence = "shrunk", min(conf_after, conf_cleared)
        else:
            status, confidence = "persisting", conf_after
    return ZoneChange(
        status=status,
        confidence=confidence,
        park=key[0],
        operator=key[1],
        tech=key[2],
        before=tuple(old),
        after=tuple(new),
        cells_before=p,
        cells_after=c_,
        cleared=cleared,
        unverified=unverified,
        added=added,
        previously_surveyed_share=surveyed,
    )
