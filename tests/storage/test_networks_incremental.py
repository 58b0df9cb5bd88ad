"""Networks over every stored reading, brought up to date from appended rows, equal the full query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from storage.duckdb_schema import ddl
from storage.query import NetworkRows, Scope
from storage.query_duckdb import DuckDBQuery

T0 = datetime(2026, 11, 2)
EVER = Scope(parks=None, start=datetime(1970, 1, 1, tzinfo=UTC), end=datetime(1970, 1, 1, tzinfo=UTC))


def _append(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str, str, str, float | None]]) -> None:
    con.executemany(
        "INSERT INTO cellular (ts, park, gw, dev, operator, tech, rsrp_dbm) VALUES (?, ?, 'gw', 'd', ?, ?, ?)",
        [(T0 + timedelta(seconds=s), park, op, tech, rsrp) for s, park, op, tech, rsrp in rows],
    )


def _full(con: duckdb.DuckDBPyConnection, park: str | None = None) -> list[tuple[object, ...]]:
    return con.execute(
        "SELECT park, operator, tech, count(*), epoch_ms(max(ts)) FROM cellular "
        "WHERE rsrp_dbm IS NOT NULL AND (? IS NULL OR park = ?) GROUP BY ALL ORDER BY ALL",
        [park, park],
    ).fetchall()


def _rows(n: NetworkRows) -> list[tuple[object, ...]]:
    return [(r["park"], r["operator"], r["tech"], r["samples"], r["last_ms"]) for r in n.rows()]


def test_appends_and_deletes_keep_the_answer_exact(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "n.duckdb"))
    for stmt in ddl():
        con.execute(stmt)
    q = DuckDBQuery(connection=con)
    one_park = Scope(parks=("p2",), start=EVER.start, end=EVER.end)
    _append(con, [(1, "p1", "A", "LTE", -90.0), (2, "p1", "A", "LTE", None), (3, "p2", "B", "NR", -100.0)])
    assert _rows(q.networks(EVER, timed=False)) == _full(con)
    assert _rows(q.networks(one_park, timed=False)) == _full(con, "p2")
    # Appended: a new network, more readings of a known one (one without RSRP), an older timestamp.
    _append(con, [(9, "p1", "A", "LTE", -80.0), (0, "p2", "B", "NR", -99.0), (5, "p3", "C", "LTE", -70.0)])
    _append(con, [(10, "p2", "B", "NR", None)])
    assert _rows(q.networks(EVER, timed=False)) == _full(con)
    assert _rows(q.networks(one_park, timed=False)) == _full(con, "p2")
    assert len(_full(con)) == 3
    # A retention delete: the kept counts no longer add up, the full query answers.
    con.execute("DELETE FROM cellular WHERE ts < ?", [T0 + timedelta(seconds=2)])
    _append(con, [(11, "p1", "A", "LTE", -85.0)])
    assert _rows(q.networks(EVER, timed=False)) == _full(con)
    assert _rows(q.networks(one_park, timed=False)) == _full(con, "p2")
    con.close()
