"""Cell statistics aggregated from raw cellular rows with numpy, exactly as the SQL definition.

The DuckDB backend (:mod:`storage.query_duckdb`) fetches a window's rows as Arrow columns and
hands them here: one group id per row from dictionary codes, each group laid out as one row of a
NaN-padded matrix (:class:`_GroupLayout`), one row-wise sort per metric for all groups at once,
ranks indexing into the sorted rows (InfluxQL's nearest-rank p10, interpolated medians). It runs
on the caller's thread: aggregating even and odd cells on two threads was measured no faster on
the 2-core reference machine and was removed. How this came about and what it costs:
``docs/api.md``, "How the coverage query is computed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storage.query import CellStats


def _encode(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], pa.Array]:
    """Dense integer codes of a column (NULL gets a code of its own) and the value of each code."""
    enc = pc.dictionary_encode(col, null_encoding="encode").combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def _codes(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """:func:`_encode` with the values as Python objects."""
    codes, values = _encode(col)
    return codes, values.to_pylist()


def uint_codes(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], np.ma.MaskedArray[Any, Any]]:
    """:func:`_encode` of an unsigned integer column, the values as numpy (masked for NULL)."""
    codes, values = _encode(col)
    mask = values.is_null().to_numpy(zero_copy_only=False)
    return codes, np.ma.MaskedArray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), mask=mask)


def _millis(col: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """A timestamp column as epoch milliseconds (``epoch_ms`` in DuckDB)."""
    ts = col.to_numpy().astype("datetime64[us]").view(np.int64)
    out: npt.NDArray[np.int64] = ts // 1000
    return out


def _floats(col: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    """A float column as numpy, NULL as NaN."""
    out: npt.NDArray[np.float64] = col.to_numpy().astype(np.float64, copy=False)
    return out


class _GroupLayout:
    """Rows laid out per group for row-wise sorting: each group becomes one row of a NaN-padded
    matrix, with groups of similar size (the same rounded-up width) sharing a matrix, so padding
    adds at most a quarter to the data. Sorting a matrix along its rows sorts every group at once,
    exactly, with NaN (missing values and padding) last.
    """

    def __init__(self, gid: npt.NDArray[np.int64], groups: int) -> None:
        self.groups = groups
        counts = np.bincount(gid, minlength=groups)
        # Widths: 1..8, then four steps per power of two (8, 10, 12, 14, 16, 20, ...), so a
        # group's row is at most 25 % padding.
        width = np.maximum(counts, 1).astype(np.int64)
        big = counts > 8
        step = 1 << (np.floor(np.log2(counts[big])).astype(np.int64) - 2)
        width[big] = -(-counts[big] // step) * step
        # Number the groups by (width, group) so each width class is one contiguous run of rows,
        # and all matrices lie one after the other in one flat buffer.
        self.members = np.lexsort((np.arange(groups), width))
        width_new = width[self.members]
        row_start = np.empty(groups, dtype=np.int64)  # each group's matrix row in the buffer
        row_start[self.members] = np.cumsum(width_new) - width_new
        self.size = int(width_new.sum())
        # Each input row's slot: its group's row start plus its rank within the group (a stable
        # sort by group gives the ranks; any order within a group would do).
        order = np.argsort(gid.astype(np.uint16) if groups <= 1 << 16 else gid, kind="stable")
        g_sorted = gid[order]
        first_of_group = np.cumsum(counts) - counts
        self.dest = np.empty(len(gid), dtype=np.int64)
        self.dest[order] = np.arange(len(gid), dtype=np.int64) + (row_start - first_of_group)[g_sorted]
        # (width, first group, end group, first buffer slot) per width class
        self.classes: list[tuple[int, int, int, int]] = []
        counts_new = counts[self.members]
        bounds = np.flatnonzero(np.diff(width_new)) + 1
        for ga, gb in zip([0, *bounds.tolist()], [*bounds.tolist(), groups], strict=True):
            if counts_new[ga:gb].sum() == 0:
                continue
            self.classes.append((int(width_new[ga]), ga, gb, int(row_start[self.members[ga]])))

    def order_stats(
        self, values: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per group: InfluxQL's nearest-rank p10 and the interpolated median of the non-NaN ``values``."""
        p10 = np.full(self.groups, np.nan)
        median = np.full(self.groups, np.nan)
        buf = np.full(self.size, np.nan)
        buf[self.dest] = values
        for w, ga, gb, off in self.classes:
            m = buf[off : off + (gb - ga) * w].reshape(gb - ga, w)
            m.sort(axis=1)
            n = w - np.isnan(m).sum(axis=1)
            rows = np.arange(gb - ga)
            members = self.members[ga:gb]
            r = np.floor(n * 10 / 100.0 + 0.5).astype(np.int64)
            has = r >= 1
            p10[members[has]] = m[rows[has], r[has] - 1]
            has = n > 0
            nh = n[has]
            median[members[has]] = (m[rows[has], (nh + 1) // 2 - 1] + m[rows[has], nh // 2]) / 2
        return p10, median


def _distinct_per_group(
    gid: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], groups: int, n_codes: int
) -> npt.NDArray[np.int64]:
    """Number of distinct ``codes`` per group."""
    pairs = gid * n_codes + codes
    span = groups * n_codes
    if span <= max(4 * len(pairs), 1 << 20):
        seen = np.bincount(pairs, minlength=span).reshape(groups, n_codes) > 0
        counts: npt.NDArray[np.int64] = seen.sum(axis=1).astype(np.int64)
        return counts
    pairs = np.sort(pairs)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] // n_codes, minlength=groups).astype(np.int64)


def _dense_rank(values: list[Any]) -> npt.NDArray[np.int64]:
    """Per value its rank in SQL order (NULL last); equal values share a rank."""
    order = sorted({v for v in values if v is not None})
    rank = {v: i for i, v in enumerate(order)}
    return np.array([rank[v] if v is not None else len(order) for v in values], dtype=np.int64)


def _pack_series(
    parts: list[tuple[npt.NDArray[np.int64], list[Any]]],
) -> tuple[npt.NDArray[np.int64], list[tuple[Any, ...]]]:
    """Combine the codes of several key columns into one code per distinct tuple of values."""
    sizes = [len(values) for _, values in parts]
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    for (codes, _), size in zip(parts, sizes, strict=True):
        key = key * size + codes
    uniq, code = np.unique(key, return_inverse=True)
    tuples: list[tuple[Any, ...]] = []
    for k in uniq.tolist():
        idx = []
        for size in reversed(sizes):
            k, r = divmod(k, size)
            idx.append(r)
        tuples.append(tuple(values[i] for (_, values), i in zip(parts, reversed(idx), strict=True)))
    return code.ravel().astype(np.int64), tuples


def cell_stats_from_rows(table: pa.Table, *, constants: Mapping[str, str] | None = None) -> CellStats:
    """Aggregate raw cellular rows into :class:`CellStats`, exactly as the SQL definition would.

    ``table`` has the columns ``park, h3, operator, tech, dev, ts, rsrp_dbm, rsrq_db, sinr_db``
    (one row per reading, ``h3`` already at the requested resolution). Per (park, h3, operator,
    tech) group with at least one RSRP: ``samples`` = readings with an RSRP; ``devices`` = distinct
    non-NULL devices among them; first/last seen over them; RSRP and SINR nearest-rank p10 and
    interpolated medians, RSRQ median, each over the group's non-NULL values of that metric. Rows
    are ordered by park, h3, operator, tech (NULL last), as ``ORDER BY`` in DuckDB.
    A key column named in ``constants`` may be absent: every row has that value.
    """
    constants = constants or {}
    if table.num_rows == 0:
        return CellStats()

    def encode(name: str) -> tuple[npt.NDArray[np.int64], list[Any]]:
        if name in constants:
            return np.zeros(table.num_rows, dtype=np.int64), [constants[name]]
        return _codes(table[name])

    series_c, series = _pack_series([encode("park"), encode("operator"), encode("tech")])
    h3_c, cells = encode("h3")
    dev_c, devs = encode("dev")
    return aggregate(
        table,
        series_c,
        series,
        h3_c,
        np.array([0 if c is None else c for c in cells], dtype=np.uint64),
        dev_c,
        np.array([d is not None for d in devs], dtype=bool),
    )


def aggregate(
    table: pa.Table,
    series_c: npt.NDArray[np.int64],
    series: list[tuple[Any, ...]],
    h3_c: npt.NDArray[np.int64],
    cells: npt.NDArray[np.uint64],
    dev_c: npt.NDArray[np.int64],
    dev_known: npt.NDArray[np.bool_],
) -> CellStats:
    """The aggregation behind :func:`cell_stats_from_rows`, over coded keys.

    ``series_c`` numbers each row's (park, operator, tech), ``series`` holds the values of each
    number; ``h3_c`` numbers the row's cell, ``cells`` the cell of each number; ``dev_c`` numbers
    the row's device, ``dev_known`` is False for the number of a NULL device. ``table`` supplies
    ``ts`` (a timestamp), ``rsrp_dbm, rsrq_db, sinr_db``.
    """
    rows = _Rows(
        series_c=series_c,
        h3_c=h3_c,
        dev_c=dev_c,
        ts_ms=_millis(table["ts"]),
        rsrp=_floats(table["rsrp_dbm"]),
        rsrq=_floats(table["rsrq_db"]),
        sinr=_floats(table["sinr_db"]),
    )
    g = _group_stats(rows, (len(series), len(cells)), dev_known)
    series_k, h3_k = g["series_k"], g["h3_k"]

    parks, ops, techs = ([s[i] for s in series] for i in range(3))
    cell_rank = np.empty(len(cells), dtype=np.int64)
    cell_rank[np.argsort(cells, kind="stable")] = np.arange(len(cells))
    idx = np.lexsort(
        (
            _dense_rank(techs)[series_k],
            _dense_rank(ops)[series_k],
            cell_rank[h3_k],
            _dense_rank(parks)[series_k],
        )
    )

    def obj(values: list[Any]) -> npt.NDArray[np.object_]:
        arr = np.array([*values, None], dtype=object)[:-1]
        out: npt.NDArray[np.object_] = arr[series_k[idx]]
        return out

    return CellStats(
        park=obj(parks),
        h3=cells[h3_k[idx]],
        operator=obj(ops),
        tech=obj(techs),
        **{name: g[name][idx] for name in _GROUP_COLUMNS},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rows:
    """The per-row arrays of :func:`aggregate`."""

    series_c: npt.NDArray[np.int64]
    h3_c: npt.NDArray[np.int64]
    dev_c: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    rsrp: npt.NDArray[np.float64]
    rsrq: npt.NDArray[np.float64]
    sinr: npt.NDArray[np.float64]


_GROUP_COLUMNS: Final = (
    "samples",
    "devices",
    "rsrp_p10_dbm",
    "rsrp_median_dbm",
    "rsrq_median_db",
    "sinr_p10_db",
    "sinr_median_db",
    "first_ms",
    "last_ms",
)


def _group_stats(
    r: _Rows, shape: tuple[int, int], dev_known: npt.NDArray[np.bool_]
) -> dict[str, npt.NDArray[Any]]:
    """Statistics of the groups with at least one RSRP among the rows: ``series_k``, ``h3_k``
    and the :data:`_GROUP_COLUMNS`."""
    n_series, n_cells = shape
    key = r.series_c * n_cells + r.h3_c
    span = n_series * n_cells
    if span <= max(4 * len(key), 1 << 20):
        present = np.bincount(key, minlength=span) > 0
        uniq = np.flatnonzero(present)
        gid = (np.cumsum(present) - 1)[key]
    else:
        uniq, gid = np.unique(key, return_inverse=True)
        gid = gid.ravel()
    groups = len(uniq)
    has_rsrp = ~np.isnan(r.rsrp)
    g_r = gid[has_rsrp]
    samples = np.bincount(g_r, minlength=groups)
    ts_ms = r.ts_ms[has_rsrp]
    first_ms = np.full(groups, np.iinfo(np.int64).max)
    last_ms = np.full(groups, np.iinfo(np.int64).min)
    np.minimum.at(first_ms, g_r, ts_ms)
    np.maximum.at(last_ms, g_r, ts_ms)
    dev_r = r.dev_c[has_rsrp]
    known = dev_known[dev_r]
    devices = _distinct_per_group(g_r[known], dev_r[known], groups, len(dev_known))
    layout = _GroupLayout(gid, groups)
    rsrp_p10, rsrp_med = layout.order_stats(r.rsrp)
    _, rsrq_med = layout.order_stats(r.rsrq)
    sinr_p10, sinr_med = layout.order_stats(r.sinr)
    keep = samples > 0
    series_k, h3_k = np.divmod(uniq[keep], n_cells)
    return {
        "series_k": series_k,
        "h3_k": h3_k,
        "samples": samples[keep].astype(np.int64),
        "devices": devices[keep].astype(np.int64),
        "rsrp_p10_dbm": rsrp_p10[keep],
        "rsrp_median_dbm": rsrp_med[keep],
        "rsrq_median_db": rsrq_med[keep],
        "sinr_p10_db": sinr_p10[keep],
        "sinr_median_db": sinr_med[keep],
        "first_ms": first_ms[keep],
        "last_ms": last_ms[keep],
    }
