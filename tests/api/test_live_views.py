"""Live coverage views: requests without ``to`` are answered as of a background refresh, exactly,
and never older than ``live_max_age_s``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.live import MAX_VIEWS, LiveViews, refresh_one, run
from api.registry import Registry
from storage.query import CellSamples, CellStats, Scope
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import api_settings, headers
from tests.api.data import T0, cellular_rows

MAX_AGE_S = 60.0
REFRESH_S = 15.0


class Clock:
    """A settable "now"."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _scope(clock: Clock, hours: float, park: str = "p1") -> Scope:
    end = clock()
    return Scope(parks=(park,), start=end - timedelta(hours=hours), end=end)


# -- the bookkeeping, unit ------------------------------------------------------------------------


def test_a_view_is_answered_as_of_its_end_while_that_is_at_most_max_age_old() -> None:
    clock = Clock(T0 + timedelta(days=2, microseconds=250_000))
    views = LiveViews(max_age_s=MAX_AGE_S, refresh_s=REFRESH_S, keep_s=900, clock=clock)
    first = views.pin(_scope(clock, 24), 10)
    assert first.live and first.end == T0 + timedelta(days=2)  # whole seconds
    assert first.end - first.start == timedelta(hours=24)
    for step in (1, 20, 38.5):  # up to 59.75 s after the end: still answered as of it
        clock.step(step)
        # The client's "now - 24 h" by its own clock, a few seconds off: the same view.
        pinned = views.pin(
            Scope(parks=("p1",), start=clock() - timedelta(hours=24, seconds=7), end=clock()), 10
        )
        assert pinned == first
    clock.step(0.5)  # 60.25 s: too old, the request's own time becomes the view's end
    later = views.pin(_scope(clock, 24), 10)
    assert later.end == clock().replace(microsecond=0) and later.end > first.end
    # Another length, park, operator or resolution is another view.
    assert views.pin(_scope(clock, 168), 10).end - views.pin(_scope(clock, 168), 10).start == timedelta(
        days=7
    )
    assert len(views.views()) == 2
    views.pin(_scope(clock, 24, park="p2"), 10)
    views.pin(_scope(clock, 24), 9)
    views.pin(Scope(parks=("p1",), start=clock() - timedelta(hours=24), end=clock(), operator="Alpha"), 10)
    assert len(views.views()) == 5


def test_the_refresher_advances_due_views_oldest_first_and_forgets_unwatched_ones() -> None:
    clock = Clock(T0 + timedelta(days=2))
    views = LiveViews(max_age_s=MAX_AGE_S, refresh_s=REFRESH_S, keep_s=100, clock=clock)
    a = views.pin(_scope(clock, 24), 10)
    clock.step(5)
    b = views.pin(_scope(clock, 168), 10)
    assert views.due() == []
    clock.step(REFRESH_S)
    warmed: list[tuple[Scope, int]] = []
    assert refresh_one(views, lambda scope, res: warmed.append((scope, res))) is not None
    assert warmed[0][0].end == clock().replace(microsecond=0) and warmed[0][0].live
    assert warmed[0][0].end - warmed[0][0].start == a.end - a.start  # the older end went first
    assert refresh_one(views, lambda scope, res: warmed.append((scope, res))) is not None
    assert warmed[1][0].end - warmed[1][0].start == b.end - b.start
    assert refresh_one(views, lambda scope, res: warmed.append((scope, res))) is None  # none due
    assert views.stats.refreshes == 2
    # Requests now get the refreshed end.
    assert views.pin(_scope(clock, 24), 10).end == warmed[0][0].end
    # A failed refresh is counted and leaves the view's end where it was.
    clock.step(REFRESH_S)

    def fail(scope: Scope, res: int) -> None:
        raise RuntimeError("database gone")

    before = views.pin(_scope(clock, 24), 10).end
    refresh_one(views, fail)
    assert views.stats.errors == 1 and views.pin(_scope(clock, 24), 10).end == before
    # Nobody asks for them for longer than keep_s: no longer refreshed.
    clock.step(101)
    assert views.due() == [] and views.views() == []


def test_a_request_for_an_overdue_view_waits_for_its_refresh_rather_than_computing_it_again() -> None:
    clock = Clock(T0)
    views = LiveViews(max_age_s=MAX_AGE_S, refresh_s=REFRESH_S, keep_s=900, clock=clock)
    first = views.pin(_scope(clock, 24), 10)
    clock.step(MAX_AGE_S - 1)
    during: list[Scope] = []

    def warm(scope: Scope, res: int) -> None:
        clock.step(2)  # the refresh takes a while: the view's end is now older than max_age
        during.append(views.pin(_scope(clock, 24), 10))
        assert during[0].end == scope.end  # the refresher's end: the cache's single flight joins them

    refresh_one(views, warm)
    assert during[0].end > first.end
    # Without a refresh under way an overdue view is computed up to the request's own time.
    clock.step(MAX_AGE_S + 1)
    assert views.pin(_scope(clock, 24), 10).end == clock().replace(microsecond=0)


def test_views_are_bounded() -> None:
    clock = Clock(T0)
    views = LiveViews(max_age_s=MAX_AGE_S, refresh_s=REFRESH_S, keep_s=900, clock=clock)
    for i in range(MAX_VIEWS + 5):
        clock.step(1)
        views.pin(_scope(clock, 1 + i), 10)
    assert len(views.views()) == MAX_VIEWS


def test_the_refresher_loop_stops_when_asked() -> None:
    clock = Clock(T0)
    views = LiveViews(max_age_s=MAX_AGE_S, refresh_s=REFRESH_S, keep_s=900, clock=clock)
    views.pin(_scope(clock, 24), 10)
    clock.step(REFRESH_S)
    warmed: list[Scope] = []

    async def main() -> None:
        stop = asyncio.Event()

        def warm(scope: Scope, res: int) -> None:
            warmed.append(scope)
            stop.set()  # the loop ends after this refresh

        await asyncio.wait_for(run(views, warm, stop=stop), 30)

    asyncio.run(main())
    assert len(warmed) == 1 and views.stats.refreshes == 1


# -- over a real DuckDB file with appends -----------------------------------------------------------


@pytest.fixture
def live_app(
    store: Path, tmp_path: Path
) -> Iterator[tuple[TestClient, Clock, duckdb.DuckDBPyConnection, Any]]:
    """The API over a writable copy of the test store, one connection shared with "the ingester";
    no lifespan, so the test runs each background refresh itself."""
    path = tmp_path / "live.duckdb"
    path.write_bytes(store.read_bytes())
    con = duckdb.connect(str(path))
    clock = Clock(T0 + timedelta(days=2, hours=12))
    settings = api_settings(
        api={"cache_ttl_s": 5.0, "live_max_age_s": MAX_AGE_S, "live_refresh_s": REFRESH_S}
    )
    registry = Registry(tmp_path / "registry.sqlite")
    backend = CountingDuckDB(connection=con)
    app = create_app(settings, backend=backend, registry=registry, clock=clock)
    client = TestClient(app, raise_server_exceptions=True)
    yield client, clock, con, app.state.ctx.services
    registry.close()
    con.close()


class CountingDuckDB(DuckDBQuery):
    """The real backend, counting the computations a coverage answer needs."""

    computations = 0

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        self.computations += 1
        return super().cell_stats(scope, resolution=resolution)

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        self.computations += 1
        return super().cell_samples(scope, resolution=resolution)


def _append(con: duckdb.DuckDBPyConnection, start: datetime, seed: int) -> None:
    """Readings across the test area, 20 dB weaker than the stored ones, stamped over the 45
    minutes from ``start`` on."""
    rows = cellular_rows(n=400, seed=seed)
    con.executemany(
        "INSERT INTO cellular (ts, park, gw, dev, lat, lon, h3, operator, tech, rsrp_dbm, rsrq_db, sinr_db) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                (start + (r["ts"] - rows[0]["ts"]) / 100).replace(tzinfo=None),
                r["park"],
                r["gw"],
                r["dev"],
                r["lat"],
                r["lon"],
                r["h3"],
                r["operator"],
                r["tech"],
                r["rsrp_dbm"] - 20.0,
                r["rsrq_db"],
                r["sinr_db"],
            )
            for r in rows
        ],
    )


def _get(client: TestClient, path: str, **params: str) -> dict[str, Any]:
    r = client.get(
        f"/api/v1/coverage/{path}", params={"park": "p1", "limit": "5000", **params}, headers=headers("admin")
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _fresh(client: TestClient, path: str, window: list[str]) -> dict[str, Any]:
    """The same window asked with an explicit ``to``: computed over the rows stored now."""
    body = _get(client, path, **{"from": window[0], "to": window[1]})
    assert "as_of" not in body
    return body


def _same_answer(live: dict[str, Any], fresh: dict[str, Any]) -> None:
    assert live["window"] == fresh["window"]
    assert live["features"] == fresh["features"] and live["total"] == fresh["total"]


def test_live_answers_are_exact_and_never_older_than_max_age(
    live_app: tuple[TestClient, Clock, duckdb.DuckDBPyConnection, Any],
) -> None:
    client, clock, con, services = live_app
    views = services.coverage.live

    def frm() -> str:  # the dashboard's "last 24 h"
        return (clock() - timedelta(hours=24)).isoformat()

    first = _get(client, "cells", **{"from": frm()})
    as_of = datetime.fromisoformat(first["as_of"])
    assert first["window"] == [(as_of - timedelta(hours=24)).isoformat(), as_of.isoformat()]
    assert first["total"] > 0
    _same_answer(first, _fresh(client, "cells", first["window"]))

    # The ingester appends inside the view's window; requests within max_age keep the answer as of
    # its end (it stated when), every one of them within the bound.
    _append(con, as_of - timedelta(hours=1), seed=7)
    clock.step(10)
    again = _get(client, "cells", **{"from": frm()})
    assert again["as_of"] == first["as_of"] and again["features"] == first["features"]
    assert (clock() - as_of).total_seconds() <= MAX_AGE_S

    # The background refresh computes the view as of now, with the appended rows: the next answer
    # is exactly a fresh computation over the same rows.
    clock.step(REFRESH_S)
    backend = services.backend
    computed = backend.computations
    assert refresh_one(views, services.coverage.warm_live) is not None
    assert backend.computations == computed + 2  # cell statistics and the dead-zone samples
    refreshed = _get(client, "cells", **{"from": frm()})
    assert backend.computations == computed + 2  # served from the refresh, nothing computed on request
    assert datetime.fromisoformat(refreshed["as_of"]) == clock().replace(microsecond=0)
    assert refreshed["features"] != first["features"]  # the appended rows moved the figures
    _same_answer(refreshed, _fresh(client, "cells", refreshed["window"]))
    for path in ("dead-zones", "gaps"):
        live_zones = _get(client, path, **{"from": frm()})
        assert live_zones["as_of"] == refreshed["as_of"]
        _same_answer(live_zones, _fresh(client, path, live_zones["window"]))

    # No refresh for longer than max_age (the refresher is behind): the request is not answered
    # from the old refresh but computed up to its own time, exactly.
    clock.step(MAX_AGE_S + 1)
    _append(con, clock() - timedelta(minutes=50), seed=8)
    late = _get(client, "cells", **{"from": frm()})
    assert datetime.fromisoformat(late["as_of"]) == clock().replace(microsecond=0)
    _same_answer(late, _fresh(client, "cells", late["window"]))


def test_explicit_windows_and_disabled_live_views_are_computed_up_to_the_request(
    live_app: tuple[TestClient, Clock, duckdb.DuckDBPyConnection, Any],
) -> None:
    client, clock, _, services = live_app
    to = clock().isoformat()
    frm = (clock() - timedelta(hours=24)).isoformat()
    explicit = _get(client, "cells", **{"from": frm, "to": to})
    assert "as_of" not in explicit and explicit["window"] == [frm, to]
    assert services.coverage.live.views() == []
    services.coverage.live.max_age_s = 0.0  # live_max_age_s = 0: off
    off = _get(client, "cells", **{"from": frm})
    assert "as_of" not in off and off["window"] == [frm, to]
