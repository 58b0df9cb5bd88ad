"""Grouping primitives over numpy arrays: dense group ids, order within groups, string codes.

They replace multi-key ``np.lexsort`` calls and per-row Python loops in the grouped analytics
(:func:`analytics.deadzones.assess_cells`, :func:`analytics.calibration.estimate_offsets`) with
the same answers: a lexsort by (group, value) is one sort of the values plus one stable sort of
the group ids, which numpy does as a radix sort when the ids fit in 16 bits. Elements that tie on
(group, value) may come out in another order than ``np.lexsort`` gives; every caller only reads
values, counts or ranks of tied runs, which do not depend on it.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

_RADIX_MAX: Final = 1 << 16
"""Group ids below this sort as ``uint16`` (numpy's stable sort is then a radix sort)."""


def stable_order(group: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """``np.argsort(group, kind="stable")`` for non-negative ids: one radix pass per 16 bits
    (least significant first) when they are below 2**32."""
    top = int(group.max()) if len(group) else 0
    if top < _RADIX_MAX:
        order: npt.NDArray[np.intp] = np.argsort(group.astype(np.uint16), kind="stable")
        return order
    if top < _RADIX_MAX * _RADIX_MAX:
        low = np.argsort((group & (_RADIX_MAX - 1)).astype(np.uint16), kind="stable")
        high: npt.NDArray[np.intp] = low[np.argsort((group[low] >> 16).astype(np.uint16), kind="stable")]
        return high
    out: npt.NDArray[np.intp] = np.argsort(group, kind="stable")
    return out


def group_value_order(group: npt.NDArray[np.int64], values: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Indices that sort by ``group`` (non-negative ids), then by ``values`` (NaN last): the
    order of ``np.lexsort((values, group))`` up to elements whose values are the same bits.

    Equal non-zero numbers are the same bits; zeros (0.0 and -0.0 compare equal) and NaNs are
    put back in row order, as the stable lexsort has them, so every value read in this order
    is the value lexsort's order gives, bit for bit (a median of 0.0 and -0.0 keeps its sign).
    """
    by_value = np.argsort(values)
    out: npt.NDArray[np.intp] = by_value[stable_order(group[by_value])]
    if values.dtype.kind == "f":
        v = values[out]
        nan = np.isnan(v)
        fix = np.flatnonzero((v == 0) | nan)
        if len(fix):
            rows = out[fix]
            out[fix] = rows[np.lexsort((rows, nan[fix], group[rows]))]
    return out


def dense_ids(key: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    """Each non-negative ``key`` numbered ``0 .. n - 1`` in ascending key order, and ``n``."""
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64), 0
    span = int(key.max()) + 1
    if span <= max(4 * len(key), 1 << 20):
        present = np.bincount(key, minlength=span) > 0
        rank = np.cumsum(present) - 1
        return rank[key].astype(np.int64), int(rank[-1]) + 1
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.ravel().astype(np.int64), len(uniq)


def distinct_count(
    group: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], n_groups: int
) -> npt.NDArray[np.int64]:
    """Number of distinct ``codes`` (non-negative) per group ``0 .. n_groups - 1``."""
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    ids, _ = dense_ids(group * n_codes + codes)
    first = np.zeros(int(ids.max()) + 1 if len(ids) else 0, dtype=np.int64)
    first[ids] = group
    out: npt.NDArray[np.int64] = np.bincount(first, minlength=n_groups).astype(np.int64)
    return out


def string_codes(
    values: npt.NDArray[Any], *, none_as: str | None = None
) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes of ``values`` as strings (``str(v)``; None as ``none_as`` when given),
    numbered in sorted order of the strings, and the sorted strings.

    One dictionary look-up per run of equal neighbours (columns ordered by key, as the backends
    return them, have long runs); the strings are built and sorted once per distinct value.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), []
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    items = values[starts].tolist()
    distinct = list(dict.fromkeys(items))

    def text(v: Any) -> str:
        return none_as if v is None and none_as is not None else str(v)

    uniq = sorted({text(v) for v in distinct})
    rank = {u: i for i, u in enumerate(uniq)}
    code_of = {v: rank[text(v)] for v in distinct}
    run_codes = np.fromiter(map(code_of.__getitem__, items), dtype=np.int64, count=len(items))
    out: npt.NDArray[np.int64] = np.repeat(run_codes, np.diff(np.r_[starts, len(values)]))
    return out, uniq
