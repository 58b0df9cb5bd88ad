"""One fetch of a window's rows for the cell statistics and the dead-zone samples gives the
answers of the two separate queries, bit for bit, and is never handed out stale."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import h3
import numpy as np
import pyarrow as pa
import pytest

from analytics.deadzones import assess_cells
from storage.duckdb_schema import ddl
from storage.query import CellSamples, CellStats, Scope
from storage.query_duckdb import DuckDBQuery

T0 = datetime(2026, 11, 2, tzinfo=UTC)
DAY = Scope(parks=None, start=T0, end=T0 + timedelta(days=1))


def _maybe(rng: np.random.Generator, value: Any, p_null: float) -> Any:
    return None if rng.random() < p_null else value


def _rows(rng: np.random.Generator, n: int, t0: datetime) -> pa.Table:
    """``n`` random cellular rows from ``t0`` on: three parks, operators and technologies with
    NULLs, devices without an id, readings without position (no h3, lat, lon) or without RSRP,
    values with ties and both signs of zero."""
    centre = (20.8, 106.7)
    out: dict[str, list[Any]] = {k: [] for k in ("ts", "park", "gw", "dev", "lat", "lon", "h3")}
    out |= {k: [] for k in ("operator", "tech", "rsrp_dbm", "rsrq_db", "sinr_db", "cell_id", "pci")}
    for _ in range(n):
        positioned = rng.random() > 0.08
        lat = centre[0] + float(rng.uniform(0, 0.02))
        lon = centre[1] + float(rng.uniform(0, 0.02))
        cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, 10))
        out["ts"].append(t0.replace(tzinfo=None) + timedelta(seconds=int(rng.integers(0, 86400 // 60)) * 60))
        out["park"].append(["p1", "p2", "p\u00e9"][int(rng.integers(0, 3))])
        out["gw"].append("gw")
        out["dev"].append(_maybe(rng, f"d{int(rng.integers(0, 12))}", 0.05))
        out["lat"].append(lat if positioned else None)
        out["lon"].append(lon if positioned else None)
        out["h3"].append(cell if positioned else None)
        out["operator"].append(_maybe(rng, ["A", "B", "Zed"][int(rng.integers(0, 3))], 0.03))
        out["tech"].append(_maybe(rng, ["LTE", "NR"][int(rng.integers(0, 2))], 0.03))
        rsrp = float(np.round(rng.normal(-105, 12), 0))
        out["rsrp_dbm"].append(_maybe(rng, rsrp, 0.1))
        out["rsrq_db"].append(_maybe(rng, float(rng.choice([-0.0, 0.0, -10.5, -11.0])), 0.1))
        out["sinr_db"].append(_maybe(rng, float(rng.normal(5, 8)) / 3.0, 0.1))
        out["cell_id"].append(_maybe(rng, int(rng.integers(1, 5)), 0.1))
        out["pci"].append(_maybe(rng, int(rng.integers(0, 504)), 0.1))
    return pa.table({k: pa.array(v, pa.uint64() if k == "h3" else None) for k, v in out.items()})


def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    con.register("chunk", rows)
    con.execute("INSERT INTO cellular BY NAME SELECT * FROM chunk")
    con.unregister("chunk")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    _insert(con, _rows(np.random.default_rng(11), 8000, T0))
    con.close()
    return path


def _assert_identical(got: object, want: object) -> None:
    """Same fields, same dtypes, floats the same bits (NaN and the sign of zero included)."""
    assert dataclasses.is_dataclass(got) and type(got) is type(want)
    for f in dataclasses.fields(got):
        x, y = getattr(got, f.name), getattr(want, f.name)
        if not isinstance(x, np.ndarray):
            assert x == y, f.name
            continue
        assert x.dtype == y.dtype, f.name
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), f.name
        else:
            assert x.tolist() == y.tolist(), f.name


SCOPES = [
    (DAY, 10),
    (dataclasses.replace(DAY, parks=("p\u00e9",), operator="a"), 10),
    (dataclasses.replace(DAY, parks=("p1", "p2"), tech="NR"), 10),
    (dataclasses.replace(DAY, end=T0 + timedelta(hours=7)), 8),
]


@pytest.mark.integration
@pytest.mark.parametrize("stats_first", [True, False], ids=["stats-first", "samples-first"])
@pytest.mark.parametrize(("scope", "resolution"), SCOPES)
def test_one_fetch_gives_the_answers_of_two_queries(
    store: Path, scope: Scope, resolution: int, stats_first: bool
) -> None:
    old = DuckDBQuery(path=store, shared_fetch=False)
    want_stats = old.cell_stats(scope, resolution=resolution)
    want_samples = old.cell_samples(scope, resolution=resolution)
    old.close()
    new = DuckDBQuery(path=store)
    if stats_first:
        stats = new.cell_stats(scope, resolution=resolution)
        samples = new.cell_samples(scope, resolution=resolution)  # from the kept rows
    else:
        samples = new.cell_samples(scope, resolution=resolution)
        stats = new.cell_stats(scope, resolution=resolution)
    again = new.cell_stats(scope, resolution=resolution)  # the kept rows were handed out: a new fetch
    new.close()
    # The data set has what the two paths must agree on.
    assert len(want_stats) > 10 and len(want_samples) > 200
    assert None in want_samples.dev.tolist()
    if scope.operator is None:
        assert None in want_stats.operator.tolist()
    _assert_identical(stats, want_stats)
    _assert_identical(again, want_stats)
    _assert_identical(samples, want_samples)
    a, b = assess_cells(samples), assess_cells(want_samples)
    assert len(a) > 0
    _assert_identical(a, b)


@pytest.mark.integration
def test_kept_rows_are_not_used_after_an_append_in_the_window(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    for stmt in ddl():
        con.execute(stmt)
    rng = np.random.default_rng(5)
    _insert(con, _rows(rng, 3000, T0))
    shared = DuckDBQuery(connection=con)
    before = shared.cell_stats(DAY, resolution=10)  # its rows are kept for the samples
    _insert(con, _rows(rng, 500, T0))  # a writer appends inside the window
    samples = shared.cell_samples(DAY, resolution=10)
    stats = shared.cell_stats(DAY, resolution=10)
    reference = DuckDBQuery(connection=con, shared_fetch=False)
    want_samples: CellSamples = reference.cell_samples(DAY, resolution=10)
    want_stats: CellStats = reference.cell_stats(DAY, resolution=10)
    assert int(want_stats.samples.sum()) > int(before.samples.sum())
    _assert_identical(samples, want_samples)
    _assert_identical(stats, want_stats)
    con.close()


@pytest.mark.integration
def test_an_empty_window_gives_empty_answers(store: Path) -> None:
    q = DuckDBQuery(path=store)
    empty = dataclasses.replace(DAY, start=T0 - timedelta(days=2), end=T0 - timedelta(days=1))
    assert len(q.cell_stats(empty, resolution=10)) == 0
    assert len(q.cell_samples(empty, resolution=10)) == 0
    q.close()
