"""The dead-zone samples of the DuckDB backend equal the rows of their SQL definition, in its order."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from analytics.deadzones import assess_cells
from storage.query import CellSamples, Scope, h3_parent_bits
from storage.query_duckdb import DuckDBQuery
from tests.storage.test_cell_stats_exact import T0
from tests.storage.test_cell_stats_exact import store as store  # the same random store, NULLs included

KEYS = ("park", "h3", "operator", "tech", "dev", "ts_ms")
COLUMNS = (*KEYS, "lat", "lon", "rsrp_dbm", "sinr_db", "cell_id", "pci")


def _reference(path: Path, scope: Scope, resolution: int) -> CellSamples:
    """The previous formulation: the rows sorted by DuckDB, strings straight from its rows."""
    con = duckdb.connect(str(path), read_only=True)
    where, params = DuckDBQuery._where(scope, positioned=True, cellular=True)
    cell, cell_params = "h3", []
    if resolution < 10:
        cell, cell_params = "((h3 & ?::UBIGINT) | ?::UBIGINT)", list(h3_parent_bits(resolution))
    rows = con.execute(
        f"""
        SELECT park, {cell} AS h3, operator, tech, dev, epoch_ms(ts) AS ts_ms,
               lat, lon, rsrp_dbm, sinr_db, cell_id::DOUBLE AS cell_id, pci::DOUBLE AS pci
        FROM cellular WHERE {where} AND rsrp_dbm IS NOT NULL
        ORDER BY park, h3, operator, tech, dev, ts
        """,
        cell_params + params,
    ).fetchall()
    con.close()
    cols = list(zip(*rows, strict=True))

    def obj(i: int) -> Any:
        return np.array([*cols[i], None], dtype=object)[:-1]

    def num(i: int) -> Any:
        return np.array([math.nan if v is None else v for v in cols[i]], dtype=np.float64)

    return CellSamples(
        park=obj(0),
        h3=np.array(cols[1], dtype=np.uint64),
        operator=obj(2),
        tech=obj(3),
        dev=obj(4),
        ts_ms=np.array(cols[5], dtype=np.int64),
        lat=num(6),
        lon=num(7),
        rsrp_dbm=num(8),
        sinr_db=num(9),
        cell_id=num(10),
        pci=num(11),
    )


def _row(s: CellSamples, i: int) -> tuple[Any, ...]:
    # NaN as None, so that rows compare (and sort) as plain tuples.
    values = (getattr(s, c)[i] for c in COLUMNS)
    plain = (v.item() if isinstance(v, np.generic) else v for v in values)
    return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in plain)


@pytest.mark.parametrize(
    ("parks", "operator", "tech", "resolution"),
    [(None, None, None, 10), (("p\u00e9",), "A", None, 10), (("p2",), None, "NR", 10), (None, None, None, 8)],
)
def test_samples_equal_the_sorted_sql_rows(
    store: Path, parks: tuple[str, ...] | None, operator: str | None, tech: str | None, resolution: int
) -> None:
    scope = Scope(parks=parks, start=T0, end=T0 + timedelta(days=1), operator=operator, tech=tech)
    want = _reference(store, scope, resolution)
    q = DuckDBQuery(path=store)
    got = q.cell_samples(scope, resolution=resolution)
    q.close()
    assert len(got) == len(want) > 100
    assert None in want.dev.tolist()  # devices without an id sort last
    # The same order (ORDER BY's keys, row for row) and the same rows; rows equal in every key
    # may come in either order, as they may from DuckDB's sort.
    for name in KEYS:
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    assert sorted(map(repr, (_row(got, i) for i in range(len(got))))) == sorted(
        map(repr, (_row(want, i) for i in range(len(want))))
    )
    # And the dead-zone test over them gives the same answer.
    a, b = assess_cells(got), assess_cells(want)
    assert len(a) > 0
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), f.name
        else:
            assert list(x) == list(y), f.name
