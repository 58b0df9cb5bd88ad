"""Both query backends give the same answers on the same data (real DuckDB file, real InfluxDB)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from storage.query import QueryBackend, Scope
from storage.query_duckdb import DuckDBQuery
from storage.query_influx import InfluxQuery
from tests.api.data import T0, dataset, load_duckdb, load_influx
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

WEEK = Scope(parks=None, start=T0 - timedelta(days=1), end=T0 + timedelta(days=6))


@pytest.fixture(scope="module")
def backends(
    tmp_path_factory: pytest.TempPathFactory, influxdb: ServerProcess
) -> Iterator[tuple[QueryBackend, QueryBackend]]:
    """The same data in a DuckDB file and an InfluxDB database, loaded once for this module (read-only)."""
    rows = dataset()
    for i, r in enumerate(rows["cellular"]):  # the serving cell on most readings (best server)
        if i % 3:
            r["cell_id"], r["pci"] = 268_435_456 + i % 5, i % 7
    path = tmp_path_factory.mktemp("query") / "store.duckdb"
    load_duckdb(path, rows)
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_query_{uuid.uuid4().hex[:8]}"
    load_influx(url, db, rows)
    duck = DuckDBQuery(path=path)
    influx = InfluxQuery(url=url, database=db)
    yield duck, influx
    duck.close()
    influx.close()


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]], *, skip: tuple[str, ...] = ()) -> None:
    assert len(a) == len(b) > 0
    for ra, rb in zip(a, b, strict=True):
        for k, va in ra.items():
            if k in skip:
                continue
            vb = rb[k]
            if isinstance(va, float) or isinstance(vb, float):
                fa, fb = float(va), float(vb)
                assert (math.isnan(fa) and math.isnan(fb)) or fa == pytest.approx(fb, abs=1e-9), (k, ra, rb)
            else:
                assert va == vb, (k, ra, rb)


@pytest.mark.parametrize(
    "scope",
    [
        WEEK,
        Scope(parks=("p1",), start=WEEK.start, end=WEEK.end, operator="Alpha", tech="LTE"),
        Scope(
            parks=("p1",),
            start=T0 + timedelta(days=1),
            end=T0 + timedelta(days=2),
            bbox=(106.749, 20.797, 106.756, 20.806),
        ),
        Scope(parks=(), start=WEEK.start, end=WEEK.end),
    ],
    ids=["all", "filtered", "bbox-day", "no-parks"],
)
def test_cell_stats_identical_at_ingest_resolution(
    backends: tuple[QueryBackend, QueryBackend], scope: Scope
) -> None:
    duck, influx = backends
    a, b = duck.cell_stats(scope, resolution=10).rows(), influx.cell_stats(scope, resolution=10).rows()
    if scope.parks == ():
        assert a == b == []
        return
    _same(a, b)
    if scope is not WEEK:
        return
    # Small cells have fewer than 5 samples: both report no p10 there (InfluxQL's rank rule).
    assert any(math.isnan(r["rsrp_p10_dbm"]) for r in a) and any(not math.isnan(r["rsrp_p10_dbm"]) for r in a)


def test_coarse_resolution_counts_exact_and_percentiles_close(
    backends: tuple[QueryBackend, QueryBackend],
) -> None:
    duck, influx = backends
    a, b = duck.cell_stats(WEEK, resolution=8).rows(), influx.cell_stats(WEEK, resolution=8).rows()
    _same(a, b, skip=("rsrp_p10_dbm", "rsrp_median_dbm", "rsrq_median_db", "sinr_p10_db", "sinr_median_db"))
    fine = duck.cell_stats(WEEK, resolution=10)
    assert sum(r["samples"] for r in a) == int(fine.samples.sum())
    # The rolled-up median (sample-weighted mean of child medians) stays near the exact one.
    diffs = [
        abs(x["rsrp_median_dbm"] - y["rsrp_median_dbm"])
        for x, y in zip(a, b, strict=True)
        if x["samples"] >= 20
    ]
    assert diffs and float(np.median(diffs)) < 3.0


@pytest.mark.parametrize("by", ["gw", "park"])
def test_broadband_identical(backends: tuple[QueryBackend, QueryBackend], by: str) -> None:
    duck, influx = backends
    _same(duck.broadband_stats(WEEK, by=by).rows(), influx.broadband_stats(WEEK, by=by).rows())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "bucket_s", "field", "agg"),
    [
        ("machine", 60, "", "max"),
        ("energy", 900, "", "max"),
        ("machine", 10, "spindle_temp_c", "min"),
        ("energy", 300, "power_kw", "mean"),
    ],
)
def test_buckets_identical(
    backends: tuple[QueryBackend, QueryBackend], kind: str, bucket_s: int, field: str, agg: Any
) -> None:
    duck, influx = backends

    def rows(q: QueryBackend) -> list[dict[str, Any]]:
        if field:
            return q.field_buckets(kind, WEEK, bucket_s=bucket_s, field=field, agg=agg).rows()
        if kind == "machine":
            return q.machine_buckets(WEEK, bucket_s=bucket_s).rows()
        return q.energy_buckets(WEEK, bucket_s=bucket_s).rows()

    a, b = rows(duck), rows(influx)
    assert a
    _same(
        [{k: v for k, v in r.items() if k != "state"} for r in a],
        [{k: v for k, v in r.items() if k != "state"} for r in b],
    )
    assert [r.get("state") for r in a] == [r.get("state") for r in b]


def test_status_and_ledger_identical(backends: tuple[QueryBackend, QueryBackend]) -> None:
    duck, influx = backends
    for latest in (True, False):
        a, b = duck.status(WEEK, latest=latest).rows(), influx.status(WEEK, latest=latest).rows()
        _same(a, b)
    assert [r["gw"] for r in duck.status(WEEK, latest=True).rows()] == ["gw-1", "gw-2", "gw-9"]
    _same(duck.ledger(WEEK).rows(), influx.ledger(WEEK).rows())
    one = Scope(parks=("p2",), start=WEEK.start, end=WEEK.end)
    assert [r["park"] for r in influx.ledger(one).rows()] == ["p2"]


def test_hostile_values_are_data_not_query(backends: tuple[QueryBackend, QueryBackend]) -> None:
    duck, influx = backends
    evil = Scope(
        parks=("p1' OR '1'='1", 'p1" OR 1=1 --', "p1\\"),
        start=WEEK.start,
        end=WEEK.end,
        operator="x' OR tech='LTE",
    )
    assert len(duck.cell_stats(evil, resolution=10)) == 0
    assert len(influx.cell_stats(evil, resolution=10)) == 0
    with pytest.raises(ValueError, match="numeric field"):
        duck.field_buckets("machine", WEEK, bucket_s=10, field="state) FROM x; --", agg="max")
    with pytest.raises(ValueError, match="numeric field"):
        influx.field_buckets("machine", WEEK, bucket_s=10, field='spindle_temp_c"', agg="max")


@pytest.mark.parametrize("resolution", [10, 8])
def test_cell_samples_identical(backends: tuple[QueryBackend, QueryBackend], resolution: int) -> None:
    """The rows the dead-zone test reads are the same readings, in the same order, on both backends."""
    duck, influx = backends
    a = duck.cell_samples(WEEK, resolution=resolution).rows()
    b = influx.cell_samples(WEEK, resolution=resolution).rows()
    _same(a, b)
    served = [r["cell_id"] for r in a if r["cell_id"] == r["cell_id"]]
    assert 0 < len(served) < len(a) and set(served) == {268_435_456 + k for k in range(5)}
    filtered = Scope(parks=("p1",), start=WEEK.start, end=WEEK.end, operator="Alpha", tech="LTE")
    fa = duck.cell_samples(filtered, resolution=resolution).rows()
    _same(fa, influx.cell_samples(filtered, resolution=resolution).rows())
    assert 0 < len(fa) < len(a) and {(r["operator"], r["tech"]) for r in fa} == {("Alpha", "LTE")}


@pytest.mark.parametrize("spelling", ["alpha", "ALPHA", "aLpHa"])
def test_operator_filter_ignores_letter_case_on_both_backends(
    backends: tuple[QueryBackend, QueryBackend], spelling: str
) -> None:
    duck, influx = backends
    exact = Scope(parks=("p1",), start=WEEK.start, end=WEEK.end, operator="Alpha")
    other = Scope(parks=("p1",), start=WEEK.start, end=WEEK.end, operator=spelling)
    want = duck.cell_stats(exact, resolution=10).rows()
    assert want and {r["operator"] for r in want} == {"Alpha"}
    _same(duck.cell_stats(other, resolution=10).rows(), want)
    _same(influx.cell_stats(other, resolution=10).rows(), want)
    _same(influx.cell_samples(other, resolution=10).rows(), duck.cell_samples(exact, resolution=10).rows())
    # A look-alike is not a match: the filter is the whole name, dots are not wildcards.
    for near in ("Alph", "Alphaa", "Alpha ", "A.pha"):
        s = Scope(parks=("p1",), start=WEEK.start, end=WEEK.end, operator=near)
        assert len(duck.cell_stats(s, resolution=10)) == len(influx.cell_stats(s, resolution=10)) == 0, near


def test_networks_identical_in_the_window_and_ever(backends: tuple[QueryBackend, QueryBackend]) -> None:
    duck, influx = backends
    ever = duck.networks(WEEK, timed=False).rows()
    _same(ever, influx.networks(WEEK, timed=False).rows())
    assert {(r["park"], r["operator"], r["tech"]) for r in ever} == {
        (p, o, t) for p in ("p1", "p2") for o in ("Alpha", "Beta") for t in ("LTE", "NR")
    }
    cells = duck.cell_stats(WEEK, resolution=10)
    assert sum(r["samples"] for r in ever) == int(cells.samples.sum())
    assert max(r["last_ms"] for r in ever) == int(cells.last_ms.max())
    # A window without readings: nothing in it, the same rows ever.
    empty = Scope(parks=("p1",), start=T0 - timedelta(days=30), end=T0 - timedelta(days=20), operator="beta")
    assert len(duck.networks(empty)) == len(influx.networks(empty)) == 0
    ever_p1 = influx.networks(empty, timed=False).rows()
    _same(duck.networks(empty, timed=False).rows(), ever_p1)
    assert {(r["park"], r["operator"]) for r in ever_p1} == {("p1", "Beta")}
