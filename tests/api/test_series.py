"""Chart series: factory KPIs per time bucket, each point what the table route answers for that
bucket's window, checked against hand-computed figures of the test data set; a gateway's status
history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.services.series import MAX_BUCKETS, SeriesError, buckets, status_history, step_for
from storage.query import Scope
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import headers

ADMIN = headers("admin")
HOUR = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-02T01:00:00Z"}
T0_MS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)


def test_oee_series_has_one_point_per_bucket_and_the_fault_shows(client: TestClient) -> None:
    body = client.get("/api/v1/factory/oee/series", params={**HOUR, "step_s": 600}, headers=ADMIN).json()
    assert body["level"] == "line" and body["step_s"] == 600
    (line,) = body["items"]
    assert (line["park"], line["factory"], line["line"]) == ("p1", "f1", "l1")
    points = line["points"]
    assert [p["t_ms"] for p in points] == [T0_MS + 600_000 * i for i in range(6)]
    # The machine runs for 40 minutes, then is in fault for 10, then idle.
    assert [p["availability"] for p in points[:4]] == [1.0] * 4
    assert points[4]["availability"] == 0.0 and points[4]["oee"] is None
    # Every point is the table route's answer for that bucket.
    for p in points:
        start = datetime.fromtimestamp(p["t_ms"] / 1000, UTC)
        end = datetime.fromtimestamp(p["t_ms"] / 1000 + 600, UTC)
        (row,) = client.get(
            "/api/v1/factory/oee",
            params={"from": start.isoformat(), "to": end.isoformat(), "level": "line"},
            headers=ADMIN,
        ).json()["items"]
        assert {k: row[k] for k in ("availability", "performance", "quality", "oee")} == {
            k: p[k] for k in ("availability", "performance", "quality", "oee")
        }


def test_energy_series_shows_the_step_in_demand(client: TestClient) -> None:
    body = client.get("/api/v1/factory/energy/series", params={**HOUR, "step_s": 1800}, headers=ADMIN).json()
    (factory,) = body["items"]
    first, second = factory["points"]
    # 50 kW for the first half hour, 100 kW for the second (one-minute samples).
    assert first["peak_kw"] == 50.0 and second["peak_kw"] == 100.0
    # Within one sample interval (the answer is rounded to Wh).
    assert abs(first["energy_kwh"] - 25.0) <= 50.0 / 60 + 0.001
    assert abs(second["energy_kwh"] - 50.0) <= 100.0 / 60 + 0.001
    assert body["demand_interval_s"] == 900


def test_default_step_is_a_round_one_and_too_many_buckets_is_refused(client: TestClient) -> None:
    week = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z"}
    body = client.get("/api/v1/factory/oee/series", params=week, headers=ADMIN).json()
    assert body["step_s"] == 12 * 3600 and len(body["items"][0]["points"]) == 14
    bad = client.get("/api/v1/factory/energy/series", params={**HOUR, "step_s": 60}, headers=ADMIN)
    assert bad.status_code in (400, 422) and "at most 48" in bad.json()["error"]["message"]
    assert (
        client.get(
            "/api/v1/factory/oee/series", params={**HOUR, "level": "machine"}, headers=ADMIN
        ).status_code
        == 422
    )
    assert client.get("/api/v1/factory/oee/series", params=HOUR).status_code == 401


def test_a_key_sees_only_its_parks_series(client: TestClient) -> None:
    body = client.get("/api/v1/factory/oee/series", params=HOUR, headers=headers("viewer-p2")).json()
    assert body["items"] == []


@pytest.mark.parametrize(
    ("span_h", "step", "expected"), [(1, None, 300), (24, None, 3600), (168, None, 12 * 3600), (1, 600, 600)]
)
def test_step_for(span_h: int, step: int | None, expected: int) -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    end = datetime.fromtimestamp(start.timestamp() + span_h * 3600, UTC)
    assert step_for(start, end, step) == expected
    assert len(buckets(start, end, expected)) <= MAX_BUCKETS


def test_step_for_refuses_too_many_buckets_and_buckets_end_at_the_window_end() -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    end = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    with pytest.raises(SeriesError, match="at most 48"):
        step_for(start, end, 60)
    spans = buckets(start, end, 3600)
    assert [b - a for a, b in spans] == [end - start - (spans[1][1] - spans[1][0]), spans[1][1] - spans[1][0]]
    assert spans[-1][1] == end and spans[0][0] == start


WEEK = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z"}


def test_gateway_history_lists_its_status_reports_oldest_first(client: TestClient) -> None:
    body = client.get("/api/v1/gateways/gw-2/history", params=WEEK, headers=ADMIN).json()
    assert (body["park"], body["gw"]) == ("p1", "gw-2")
    states = [p["state"] for p in body["items"]]
    assert states[:3] == ["online", "offline", "online"], states
    assert body["items"][0]["backlog"] == 5 and body["total"] == len(body["items"])
    times = [p["ts_ms"] for p in body["items"]]
    assert times == sorted(times)
    gw1 = client.get("/api/v1/gateways/gw-1/history", params=WEEK, headers=ADMIN).json()["items"][0]
    assert (gw1["uplink_operator"], gw1["uplink_rsrp_dbm"], gw1["uplink_sinr_db"]) == ("Alpha", -90.0, 10.0)


def test_gateway_history_is_scoped_and_validated(client: TestClient) -> None:
    assert (
        client.get("/api/v1/gateways/gw-2/history", params=WEEK, headers=headers("viewer-p2")).status_code
        == 404
    )
    assert client.get("/api/v1/gateways/nope/history", params=WEEK, headers=ADMIN).status_code == 404
    assert client.get("/api/v1/gateways/gw-2%0A/history", params=WEEK, headers=ADMIN).status_code == 422
    assert (
        client.get("/api/v1/gateways/gw-2/history", params={"from": "yesterday"}, headers=ADMIN).status_code
        == 422
    )


def test_gateway_history_is_thinned_evenly_keeping_both_ends(store: Path) -> None:
    backend = DuckDBQuery(path=store)
    try:
        scope = Scope(
            parks=None, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 8, tzinfo=UTC)
        )
        full = status_history(backend, scope, "gw-2")["p1"]
        thin = status_history(backend, scope, "gw-2", max_points=2)["p1"]
    finally:
        backend.close()
    assert full[0] == thin[0] >= 3
    assert [p.ts_ms for p in thin[1]] == [full[1][0].ts_ms, full[1][-1].ts_ms]
