"""The numpy aggregation of DuckDB cell statistics equals the SQL definition, row for row."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import h3
import numpy as np
import pyarrow as pa
import pytest

from storage.cell_aggregate import _GroupLayout, cell_stats_from_rows
from storage.duckdb_schema import ddl
from storage.query import Scope
from storage.query_duckdb import DuckDBQuery, learn_series_names

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _rank(lst: str, p: int) -> str:
    rank = f"CAST(floor(len({lst}) * {p} / 100.0 + 0.5) AS BIGINT)"
    return f"CASE WHEN {rank} >= 1 THEN {lst}[{rank}] END"


def _median(lst: str) -> str:
    return (
        f"CASE WHEN len({lst}) > 0 THEN ({lst}[(len({lst}) + 1) // 2] + {lst}[len({lst}) // 2 + 1]) / 2 END"
    )


# The definition the backend implements (per-group sorted lists), kept here as the oracle.
REFERENCE = f"""
    WITH g AS (
        SELECT park, h3, operator, tech,
               list_sort(list(rsrp_dbm) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS lr,
               list_sort(list(rsrq_db) FILTER (WHERE rsrq_db IS NOT NULL)) AS lq,
               list_sort(list(sinr_db) FILTER (WHERE sinr_db IS NOT NULL)) AS ls,
               count(DISTINCT dev) FILTER (WHERE rsrp_dbm IS NOT NULL) AS devices,
               epoch_ms(min(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS first_ms,
               epoch_ms(max(ts) FILTER (WHERE rsrp_dbm IS NOT NULL)) AS last_ms
        FROM cellular WHERE h3 IS NOT NULL
        GROUP BY ALL HAVING count(rsrp_dbm) > 0
    )
    SELECT park, h3, operator, tech, len(lr) AS samples, devices,
           {_rank("lr", 10)} AS rsrp_p10_dbm, {_median("lr")} AS rsrp_median_dbm,
           {_median("lq")} AS rsrq_median_db,
           {_rank("ls", 10)} AS sinr_p10_db, {_median("ls")} AS sinr_median_db,
           first_ms, last_ms
    FROM g ORDER BY park, h3, operator, tech
"""


def _maybe(rng: np.random.Generator, values: list[object], p_null: float) -> list[object]:
    return [None if rng.random() < p_null else v for v in values]


@pytest.fixture(params=["decimal", "full_mantissa"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    rng = np.random.default_rng(7)
    n = 6000
    cells = [h3.str_to_int(h3.latlng_to_cell(20.8 + 0.002 * k, 106.7, 10)) for k in range(12)]
    raw = rng.normal(-95, 12, (n, 3))
    values = np.round(raw, 1) if request.param == "decimal" else raw / 3.0
    rows = [
        (
            T0.replace(tzinfo=None) + timedelta(seconds=int(rng.integers(0, 86400))),
            ["p1", "p2", "p\u00e9"][int(rng.integers(0, 3))],
            "gw",
            _maybe(rng, [f"d{int(rng.integers(0, 9))}"], 0.05)[0],
            cells[int(rng.integers(0, len(cells)))],
            _maybe(rng, [["A", "B", "Z"][int(rng.integers(0, 3))]], 0.03)[0],
            _maybe(rng, [["LTE", "NR"][int(rng.integers(0, 2))]], 0.03)[0],
            *_maybe(rng, [float(v) for v in values[i]], 0.1),
        )
        for i in range(n)
    ]
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    for stmt in ddl():
        con.execute(stmt)
    names = ("ts", "park", "gw", "dev", "h3", "operator", "tech", "rsrp_dbm", "rsrq_db", "sinr_db")
    chunk = pa.table(
        {k: pa.array([r[i] for r in rows], pa.uint64() if k == "h3" else None) for i, k in enumerate(names)}
    )
    con.register("chunk", chunk)
    con.execute("INSERT INTO cellular BY NAME SELECT * FROM chunk")
    con.close()
    return path


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


@pytest.mark.parametrize(
    ("parks", "operator", "tech"), [(None, None, None), (("p\u00e9",), "A", None), (("p2",), None, "NR")]
)
def test_numpy_aggregation_equals_the_sql_definition(
    store: Path,
    parks: tuple[str, ...] | None,
    operator: str | None,
    tech: str | None,
) -> None:
    con = duckdb.connect(str(store), read_only=True)
    cur = con.execute(REFERENCE)
    names = [d[0] for d in cur.description or ()]
    expected = [
        row
        for row in (dict(zip(names, r, strict=True)) for r in cur.fetchall())
        if (parks is None or row["park"] in parks)
        and (operator is None or row["operator"] == operator)
        and (tech is None or row["tech"] == tech)
    ]
    con.close()
    q = DuckDBQuery(path=store)
    scope = Scope(parks=parks, start=T0, end=T0 + timedelta(days=1), operator=operator, tech=tech)
    got = q.cell_stats(scope, resolution=10).rows()
    q.close()
    assert len(got) == len(expected) > 5
    for g, e in zip(got, expected, strict=True):
        for k, ev in e.items():
            gv = g[k]
            ev = float("nan") if ev is None and isinstance(gv, float) else ev
            assert _same(gv, ev), (k, g, e)


def test_empty_rows_give_an_empty_table() -> None:
    schema = pa.schema(
        [
            ("park", pa.string()),
            ("h3", pa.uint64()),
            ("operator", pa.string()),
            ("tech", pa.string()),
            ("dev", pa.string()),
            ("ts", pa.timestamp("us")),
            ("rsrp_dbm", pa.float64()),
            ("rsrq_db", pa.float64()),
            ("sinr_db", pa.float64()),
        ]
    )
    assert len(cell_stats_from_rows(schema.empty_table())) == 0


def _naive(values: list[float]) -> tuple[float, float]:
    s = sorted(values)
    n = len(s)
    r = math.floor(n * 10 / 100 + 0.5)
    p10 = s[r - 1] if r >= 1 else math.nan
    median = (s[(n + 1) // 2 - 1] + s[n // 2]) / 2 if n else math.nan
    return p10, median


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_group_layout_order_stats_match_their_definition(scale: float) -> None:
    rng = np.random.default_rng(3)
    groups = 60
    # Skewed group sizes (0 to ~900 rows), ties and missing values.
    gid = np.minimum(rng.geometric(0.05, 8000), groups - 1).astype(np.int64)
    v = rng.normal(0, 1, len(gid)) * scale
    v[::7] = v[0]
    v[::11] = np.nan
    p10, median = _GroupLayout(gid, groups).order_stats(v)
    for k in range(groups):
        want = _naive([x for x in v[gid == k].tolist() if not math.isnan(x)])
        got = (float(p10[k]), float(median[k]))
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want, strict=True)), k


def _reference_rows(store: Path) -> list[dict[str, object]]:
    con = duckdb.connect(str(store), read_only=True)
    cur = con.execute(REFERENCE)
    names = [d[0] for d in cur.description or ()]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return rows


def _assert_same_rows(got: list[dict[str, object]], expected: list[dict[str, object]]) -> None:
    assert len(got) == len(expected) > 5
    for g, e in zip(got, expected, strict=True):
        for k, ev in e.items():
            gv = g[k]
            ev = float("nan") if ev is None and isinstance(gv, float) else ev
            assert _same(gv, ev), (k, g, e)


@pytest.mark.parametrize("hashed_keys", [True, False], ids=["hashed-keys", "key-strings"])
def test_hashed_and_string_keys_give_the_sql_answer(store: Path, hashed_keys: bool) -> None:
    expected = _reference_rows(store)
    q = DuckDBQuery(path=store, hashed_keys=hashed_keys)
    scope = Scope(parks=None, start=T0, end=T0 + timedelta(days=1))
    _assert_same_rows(q.cell_stats(scope, resolution=10).rows(), expected)
    _assert_same_rows(q.cell_stats(scope, resolution=10).rows(), expected)  # names now known
    q.close()


def test_learning_series_names_reports_a_hash_collision() -> None:
    known: dict[int, tuple[object, ...]] = {}
    first = [
        {"k": 1, "park": "p1", "operator": "A", "tech": "LTE"},
        {"k": 2, "park": "p1", "operator": None, "tech": "NR"},
    ]
    assert learn_series_names(known, first)
    assert learn_series_names(known, [*first, {"k": 3, "park": "p2", "operator": "A", "tech": "LTE"}])
    assert known == {1: ("p1", "A", "LTE"), 2: ("p1", None, "NR"), 3: ("p2", "A", "LTE")}
    # Another key with a hash already taken: a collision; the first names stay.
    assert not learn_series_names(known, [{"k": 2, "park": "p9", "operator": "B", "tech": "NR"}])
    assert known[2] == ("p1", None, "NR")
