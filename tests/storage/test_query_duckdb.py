"""DuckDB backend details: H3 parents in SQL, the nearest-rank percentile rule, empty stores."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import h3
import pytest

from storage.duckdb_schema import ddl
from storage.query import QueryError, Scope, h3_parent_bits
from storage.query_duckdb import DuckDBQuery

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SCOPE = Scope(parks=None, start=T0, end=T0 + timedelta(days=1))


def influx_percentile(values: list[float], p: int) -> float | None:
    """InfluxQL 1.x PERCENTILE, written out from its definition."""
    s = sorted(values)
    i = math.floor(len(s) * p / 100 + 0.5) - 1
    return None if i < 0 or i >= len(s) else s[i]


@pytest.mark.parametrize("resolution", range(0, 11))
def test_parent_bits_match_h3(resolution: int) -> None:
    a, o = h3_parent_bits(resolution)
    for lat, lon in ((20.8, 106.7), (-33.9, 151.2), (64.1, -21.9)):
        cell = h3.latlng_to_cell(lat, lon, 10)
        assert (h3.str_to_int(cell) & a) | o == h3.str_to_int(h3.cell_to_parent(cell, resolution))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    con.close()
    return path


@pytest.mark.parametrize("n", [1, 2, 4, 5, 6, 9, 10, 11, 15, 20, 21])
def test_percentiles_follow_influxql(store: Path, n: int) -> None:
    values = [-100.0 + ((7 * k) % n) for k in range(n)]  # a permutation-like spread with repeats
    con = duckdb.connect(str(store))
    cell = h3.str_to_int(h3.latlng_to_cell(20.8, 106.7, 10))
    con.executemany(
        "INSERT INTO cellular (ts, park, gw, dev, h3, operator, tech, rsrp_dbm, sinr_db) VALUES (?, 'p', 'g', 'd', ?, 'A', 'LTE', ?, ?)",
        [(T0.replace(tzinfo=None) + timedelta(seconds=k), cell, v, v / 10) for k, v in enumerate(values)],
    )
    con.close()
    q = DuckDBQuery(path=store)
    [row] = q.cell_stats(SCOPE, resolution=10).rows()
    q.close()
    p10 = influx_percentile(values, 10)
    assert (math.isnan(row["rsrp_p10_dbm"]) and p10 is None) or row["rsrp_p10_dbm"] == p10
    s = sorted(values)
    assert row["rsrp_median_dbm"] == (s[(n - 1) // 2] + s[n // 2]) / 2
    assert row["samples"] == n and row["devices"] == 1


def test_empty_store_and_missing_tables_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    q = DuckDBQuery(path=path)
    assert len(q.cell_stats(SCOPE, resolution=10)) == 0
    assert len(q.status(SCOPE, latest=True)) == 0
    q.ping()
    with pytest.raises(ValueError, match="resolution"):
        q.cell_stats(SCOPE, resolution=11)
    q.close()


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="The ingester creates it"):
        DuckDBQuery(path=tmp_path / "none.duckdb")


def test_a_shared_connection_stays_open_for_its_writer(store: Path) -> None:
    writer = duckdb.connect(str(store))
    q = DuckDBQuery(connection=writer)
    assert len(q.cell_stats(SCOPE, resolution=10)) == 0
    q.close()
    assert writer.execute("SELECT count(*) FROM cellular").fetchone() == (0,)
    writer.close()


def test_ledger_of_a_file_from_an_older_version(tmp_path: Path) -> None:
    """A loss_ledger table without the ingester column (not yet opened by a newer ingester)."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE loss_ledger (ts TIMESTAMP, park VARCHAR, gw VARCHAR, received BIGINT, "
        "missing BIGINT, duplicated BIGINT, late BIGINT, last_seq BIGINT)"
    )
    con.execute(
        "INSERT INTO loss_ledger VALUES (TIMESTAMP '2026-11-01 00:00:00', 'p', 'g', 5, 1, 0, 0, 5), "
        "(TIMESTAMP '2026-11-01 00:01:00', 'p', 'g', 9, 1, 2, 0, 9)"
    )
    con.close()
    q = DuckDBQuery(path=path)
    (row,) = q.ledger(
        Scope(parks=None, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC))
    ).rows()
    q.close()
    assert (row["received"], row["missing"], row["duplicated"], row["last_seq"]) == (9, 1, 2, 9)
