"""Services: an operator/technology filter is answered from the cached unfiltered cell statistics."""

from __future__ import annotations

import time
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from api.services import Services
from storage.query import CellSamples, CellStats, Scope
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import api_settings

T0 = datetime(2026, 11, 2, tzinfo=UTC)


class CountingBackend:
    """The real DuckDB backend, counting cell_stats calls (unit test of the service's cache use)."""

    def __init__(self, inner: DuckDBQuery) -> None:
        self.inner = inner
        self.calls = 0
        self.samples_calls = 0

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        self.calls += 1
        return self.inner.cell_stats(scope, resolution=resolution)

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        self.samples_calls += 1
        return self.inner.cell_samples(scope, resolution=resolution)

    def data_version(self, scope: Scope | None = None) -> Hashable | None:
        return self.inner.data_version(scope)


def _same(a: CellStats, b: CellStats) -> None:
    assert len(a) == len(b)
    for name in ("park", "h3", "operator", "tech", "samples", "devices", "first_ms", "last_ms"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    for name in ("rsrp_p10_dbm", "rsrp_median_dbm", "rsrq_median_db", "sinr_p10_db", "sinr_median_db"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def test_filtered_cells_come_from_the_cached_unfiltered_answer(store: Path) -> None:
    inner = DuckDBQuery(path=store)
    try:
        backend = CountingBackend(inner)
        service = Services.build(api_settings(api={"cache_ttl_s": 60.0}), backend)  # type: ignore[arg-type]
        whole = Scope(parks=None, start=T0 - timedelta(days=30), end=T0 + timedelta(days=30))
        everything = service.coverage.cells(whole, 10).stats
        assert backend.calls == 1 and len(everything) > 0
        op, tech = str(everything.operator[0]), str(everything.tech[0])
        for operator, technology in ((op, None), (None, tech), (op, tech), ("no such operator", None)):
            scope = Scope(parks=None, start=whole.start, end=whole.end, operator=operator, tech=technology)
            cut = service.coverage.cells(scope, 10).stats
            _same(cut, inner.cell_stats(scope, resolution=10))
        assert backend.calls == 1
    finally:
        inner.close()


def test_answers_outlive_the_ttl_only_while_the_data_is_unchanged(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(store.read_bytes())
    con = duckdb.connect(str(path))
    inner = DuckDBQuery(connection=con)
    backend = CountingBackend(inner)
    # No stale answers here: test_cache.py covers serving them while they are refreshed.
    settings = api_settings(api={"cache_ttl_s": 0.05, "cache_stale_s": 0.0})
    service = Services.build(settings, backend)  # type: ignore[arg-type]
    whole = Scope(parks=None, start=T0 - timedelta(days=30), end=T0 + timedelta(days=30))
    first = service.coverage.cells(whole, 10).stats
    time.sleep(0.1)  # past the TTL, same data: reused
    _same(service.coverage.cells(whole, 10).stats, first)
    assert backend.calls == 1
    row = con.execute(
        "SELECT ts, park, gw, dev, h3, operator, tech, rsrp_dbm FROM cellular WHERE rsrp_dbm IS NOT NULL LIMIT 1"
    ).fetchone()
    assert row is not None
    con.execute(
        "INSERT INTO cellular (ts, park, gw, dev, h3, operator, tech, rsrp_dbm) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [*row[:7], -140.0],
    )
    time.sleep(0.1)  # new data: recomputed, and the new reading is counted
    again = service.coverage.cells(whole, 10).stats
    assert backend.calls == 2
    assert int(again.samples.sum()) == int(first.samples.sum()) + 1
    con.close()


def test_answers_over_a_past_window_outlive_appends_after_it(store: Path, tmp_path: Path) -> None:
    """An ingester appending live readings leaves the cell statistics, assessment and zones of a
    past window valid; a late reading inside the window makes them recomputed."""
    path = tmp_path / "copy.duckdb"
    path.write_bytes(store.read_bytes())
    con = duckdb.connect(str(path))
    inner = DuckDBQuery(connection=con)
    backend = CountingBackend(inner)
    # Entries expire at once: only the data fingerprint keeps them.
    settings = api_settings(api={"cache_ttl_s": 1e-9, "cache_stale_s": 0.0})
    service = Services.build(settings, backend)  # type: ignore[arg-type]
    row = con.execute(
        "SELECT ts, park, gw, dev, h3, operator, tech FROM cellular WHERE rsrp_dbm IS NOT NULL ORDER BY ts DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    newest = row[0].replace(tzinfo=UTC)
    past = Scope(parks=None, start=newest - timedelta(days=30), end=newest)  # the newest reading is outside
    first = service.coverage.cells(past, 10).stats
    zones = service.coverage.dead_zones(past, 10, "poor")
    assert backend.calls == 1 and backend.samples_calls == 1 and len(first) > 0

    def append(ts: datetime) -> None:
        con.execute(
            "INSERT INTO cellular (ts, park, gw, dev, h3, operator, tech, rsrp_dbm) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [ts.replace(tzinfo=None), *row[1:7], -140.0],
        )

    append(newest + timedelta(minutes=5))  # live: after the window
    _same(service.coverage.cells(past, 10).stats, first)
    assert service.coverage.dead_zones(past, 10, "poor") is zones
    assert (backend.calls, backend.samples_calls) == (1, 1)
    append(newest - timedelta(minutes=5))  # late: inside the window
    again = service.coverage.cells(past, 10).stats
    service.coverage.dead_zones(past, 10, "poor")
    assert (backend.calls, backend.samples_calls) == (2, 2)
    assert int(again.samples.sum()) == int(first.samples.sum()) + 1
    con.close()
