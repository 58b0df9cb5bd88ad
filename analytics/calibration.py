"""Per-device RSRP offsets estimated from cells that several devices measured.

Two modems in the same place read different RSRP: antennas, cables, mounting and firmware give
each a fixed offset of a few dB. Where devices A and B both measured a cell, the difference of
their medians in that cell estimates ``offset_A - offset_B`` plus noise; the median of those
differences over every shared cell is a robust estimate of the pair's difference (a shadowed
corner or a cell edge in one cell does not move it). The offsets are the least-squares solution
of all pairs' differences, weighted by the number of shared cells, with the offsets of each
connected group of devices summing to zero: from the readings alone parkwatch cannot know the
absolute calibration, only how devices differ from their fleet. A device that shares no cell with
another keeps offset 0.

**Reference devices.** A receiver whose offset is known (a calibrated drive-test scanner, a modem
checked against one) anchors its group instead: its offset is fixed at the known value and the
others of its connected group are placed relative to it, so the group's absolute error becomes the
reference's (a fleet of three modems with offsets uniform in ±3 dB otherwise keeps a common error
of about 1 dB, the mean of their offsets, that no comparison between them can reveal).

Offsets are estimated per (operator, technology): a modem measures one operator's cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from analytics.grouped import dense_ids, group_value_order

MIN_SAMPLES_PER_DEVICE_CELL: Final = 3
"""A device's median in a cell counts for calibration from this many readings on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceOffset:
    """How much a device reads above its fleet (dB); subtract it to calibrate."""

    operator: str
    tech: str
    dev: str
    offset_db: float
    shared_cells: int
    """Cells this device measured together with at least one other device."""
    reference: bool = False
    """The offset was given (a reference device), not estimated."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "tech": self.tech,
            "dev": self.dev,
            "offset_db": round(self.offset_db, 2),
            "shared_cells": self.shared_cells,
            "reference": self.reference,
        }


def estimate_offsets(
    cell: npt.NDArray[np.int64],
    dev: npt.NDArray[np.int64],
    rsrp_dbm: npt.NDArray[np.float64],
    n_devices: int,
    *,
    known: Mapping[int, float] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Offsets (dB) and shared-cell counts of devices ``0 .. n_devices - 1`` of one (operator, tech).

    ``cell`` and ``dev`` are integer codes per reading; ``rsrp_dbm`` the measured values (no
    ``no_service`` readings: they carry no level). ``known``: the offsets of reference devices
    (device code -> dB), which anchor their connected groups.
    """
    known = dict(known or {})
    offsets = np.zeros(n_devices)
    for d, off in known.items():
        offsets[d] = off
    shared = np.zeros(n_devices, dtype=np.int64)
    if len(cell) == 0 or n_devices < 2:
        return offsets, shared
    key = cell * n_devices + dev
    order = group_value_order(key, rsrp_dbm)
    k_sorted = key[order]
    v_sorted = rsrp_dbm[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(k_sorted)])
    enough = counts >= MIN_SAMPLES_PER_DEVICE_CELL
    starts, counts = starts[enough], counts[enough]
    # The median of each (cell, device) group from its sorted values: the mean of the middle two
    # (the same value twice for an odd count), as numpy's median computes it.
    medians = (v_sorted[starts + (counts - 1) // 2] + v_sorted[starts + counts // 2]) / 2.0
    c_of, d_of = np.divmod(k_sorted[starts], n_devices)
    # Per cell its devices' medians, in device order; every pair (a, b), a before b, of a cell
    # measured by several devices gives the difference of their medians. Pairs are listed in the
    # order of their first cell (then a, then b) and each pair's differences in cell order.
    cell_start = np.flatnonzero(np.r_[True, c_of[1:] != c_of[:-1]])
    cell_len = np.diff(np.r_[cell_start, len(c_of)])
    size = np.repeat(cell_len, cell_len)
    multi = size >= 2
    np.add.at(shared, d_of[multi], 1)
    partners = np.where(multi, size - (np.arange(len(c_of)) - np.repeat(cell_start, cell_len)) - 1, 0)
    first = np.repeat(np.arange(len(c_of)), partners)
    if len(first) == 0:
        return offsets, shared
    second = first + np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners) + 1
    da, db = d_of[first], d_of[second]
    diff = medians[first] - medians[second]
    pair_of, n_pairs = dense_ids(da * n_devices + db)  # numbered in (a, b) order
    pair_key = np.empty(n_pairs, dtype=np.int64)
    pair_key[pair_of] = da * n_devices + db
    first_seen = np.full(n_pairs, len(pair_of), dtype=np.int64)
    np.minimum.at(first_seen, pair_of, np.arange(len(pair_of)))
    n_diffs = np.bincount(pair_of, minlength=n_pairs)
    # The median of each pair's differences, as np.median computes it (mean of the middle two).
    by_pair = group_value_order(pair_of, diff)
    d_sorted = diff[by_pair]
    lo = np.cumsum(n_diffs) - n_diffs
    pair_median = (d_sorted[lo + (n_diffs - 1) // 2] + d_sorted[lo + n_diffs // 2]) / 2.0
    listed = np.argsort(first_seen, kind="stable")
    pair_a, pair_b = np.divmod(pair_key[listed], n_devices)
    pairs = list(zip(pair_a.tolist(), pair_b.tolist(), strict=True))
    rows = np.zeros((n_pairs + 1, n_devices))
    rows[np.arange(n_pairs), pair_a] = 1.0
    rows[np.arange(n_pairs), pair_b] = -1.0
    rhs = np.zeros(n_pairs + 1)
    rhs[:n_pairs] = pair_median[listed]
    weights = np.ones(n_pairs + 1)
    weights[:n_pairs] = np.sqrt(n_diffs[listed])
    linked = shared > 0
    if not known:
        rows[-1, linked] = 1.0  # the linked devices' offsets sum to zero
        weights[-1] = 100.0
    else:
        rows, rhs, weights = rows[:-1], rhs[:-1], weights[:-1]
        anchors = []
        for group in _groups(pairs, n_devices):
            fixed = [d for d in group if d in known]
            if fixed:  # a reference in the group: its known offset, the others relative to it
                anchors += [(np.eye(n_devices)[d], known[d]) for d in fixed]
            else:
                anchors.append((np.isin(np.arange(n_devices), group).astype(np.float64), 0.0))
        rows = np.vstack([rows, *(a for a, _ in anchors)])
        rhs = np.r_[rhs, [v for _, v in anchors]]
        weights = np.r_[weights, np.full(len(anchors), 100.0)]
    # One BLAS thread: the system is small, and BLAS threads waiting on busy shared cores made
    # each solve ~40 ms of CPU instead of ~0.5 ms (the same solution).
    with _blas().limit(limits=1, user_api="blas"):
        sol, *_ = np.linalg.lstsq(rows * weights[:, None], rhs * weights, rcond=None)
    offsets[linked] = sol[linked]
    for d, off in known.items():
        offsets[d] = off
    return offsets, shared


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The thread pools of the loaded libraries (numpy's BLAS), inspected once."""
    return ThreadpoolController()


def _groups(pairs: list[tuple[int, int]], n_devices: int) -> list[list[int]]:
    """Connected groups of the devices that appear in ``pairs``."""
    parent = list(range(n_devices))

    def find(d: int) -> int:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for a, b in pairs:
        parent[find(a)] = find(b)
    members: dict[int, list[int]] = defaultdict(list)
    for d in sorted({d for pair in pairs for d in pair}):
        members[find(d)].append(d)
    return list(members.values())
