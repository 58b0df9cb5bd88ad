"""Every InfluxQL query of every dashboard runs against a real InfluxDB loaded with a simulated park.

Queries are expanded as Grafana would (``$timeFilter``, ``$__interval``, ``$__range_s``, template
variables with the values their own ``SHOW TAG VALUES`` query returns, "All" as a regex group).
With every variable on "All", each query must return rows; with each variable on a single value
they must still run without an error.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboards.grafana_macros import TimeRange, format_value, interpolate
from tests.dashboards.model import Query, load_dashboards, queries
from tests.dashboards.simdata import GATEWAYS, OFFLINE_GATEWAY, PARKS, Scenario, lines
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

DASHBOARDS = load_dashboards()


class Influx:
    """The v1 HTTP API of the test server, one database."""

    def __init__(self, server: ServerProcess, db: str) -> None:
        self.base = f"http://{server.host}:{server.port}"
        self.db = db

    def query(self, text: str) -> dict[str, Any]:
        body = urllib.parse.urlencode({"q": text, "db": self.db, "epoch": "ms"}).encode()
        with urllib.request.urlopen(f"{self.base}/query", data=body, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def write(self, payload: str) -> None:
        req = urllib.request.Request(
            f"{self.base}/write?db={self.db}&precision=ns", data=payload.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204


@pytest.fixture(scope="module")
def loaded(influxdb: ServerProcess) -> Iterator[tuple[Influx, TimeRange]]:
    db = Influx(influxdb, f"pw_dash_{uuid.uuid4().hex[:10]}")
    assert "error" not in db.query(f'CREATE DATABASE "{db.db}"')["results"][0]
    scenario = Scenario.ending_at(int(time.time()))
    points = list(lines(scenario))
    for i in range(0, len(points), 5000):
        db.write("\n".join(points[i : i + 5000]))
    # The dashboard's time range: the scenario plus a minute either side.
    yield db, TimeRange(from_ms=(scenario.start_s - 60) * 1000, to_ms=(scenario.end_s + 60) * 1000)
    db.query(f'DROP DATABASE "{db.db}"')


def _series(result: dict[str, Any], query: str) -> list[dict[str, Any]]:
    assert "error" not in result, f"{query}: {result['error']}"
    (res,) = result["results"]
    assert "error" not in res, f"InfluxDB refused {query!r}: {res['error']}"
    return res.get("series", [])  # type: ignore[no-any-return]


def _variable_values(
    db: Influx, tr: TimeRange, dashboard: dict[str, Any], *, all_values: bool
) -> dict[str, str]:
    """Resolve the dashboard's variables in order, each from its own query (or default)."""
    resolved: dict[str, str] = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            resolved[var["name"]] = var["current"]["value"]
            continue
        text = interpolate(var["query"], tr, resolved)
        series = _series(db.query(text), text)
        values = sorted({str(v[1]) for s in series for v in s["values"]})
        assert values, f"variable {var['name']} has no values: {text}"
        chosen = values if all_values else values[:1]
        resolved[var["name"]] = format_value(chosen, multi=var["multi"] or var["includeAll"])
    return resolved


def _all_queries() -> list[tuple[str, Query]]:
    return [(name, q) for name, d in DASHBOARDS.items() for q in queries(name, d)]


def test_there_are_queries_in_every_dashboard() -> None:
    counts = {name: sum(1 for n, _ in _all_queries() if n == name) for name in DASHBOARDS}
    assert all(c >= 10 for c in counts.values()), counts


def test_every_query_returns_rows_with_all_variables_on_all(loaded: tuple[Influx, TimeRange]) -> None:
    db, tr = loaded
    failures = []
    for name, dashboard in DASHBOARDS.items():
        variables = _variable_values(db, tr, dashboard, all_values=True)
        for query in queries(name, dashboard):
            text = interpolate(query.text, tr, variables)
            series = _series(db.query(text), text)
            rows = sum(len(s.get("values", [])) for s in series)
            if not rows:
                failures.append(f"{query}: no rows for {text}")
    assert not failures, "\n".join(failures)


def test_every_query_runs_with_single_values_selected(loaded: tuple[Influx, TimeRange]) -> None:
    db, tr = loaded
    ran = 0
    for name, dashboard in DASHBOARDS.items():
        variables = _variable_values(db, tr, dashboard, all_values=False)
        for query in queries(name, dashboard):
            _series(db.query(interpolate(query.text, tr, variables)), query.text)
            ran += 1
    assert ran == len(_all_queries())


def _run(
    db: Influx, tr: TimeRange, dashboard: str, title: str, variables: dict[str, str]
) -> list[dict[str, Any]]:
    (query,) = [
        q for q in queries(dashboard, DASHBOARDS[dashboard]) if q.where.startswith(f"panel {title!r}")
    ][:1]
    text = interpolate(query.text, tr, variables)
    return _series(db.query(text), text)


def test_fleet_counts_the_offline_gateway(loaded: tuple[Influx, TimeRange]) -> None:
    db, tr = loaded
    everything = {
        "park": format_value(list(PARKS), multi=True),
        "gw": format_value(list(GATEWAYS), multi=True),
    }
    (offline,) = _run(db, tr, "gateway-fleet", "Offline", everything)
    (online,) = _run(db, tr, "gateway-fleet", "Online", everything)
    assert offline["values"][0][1] == 1
    assert online["values"][0][1] == len(GATEWAYS) - 1
    assert OFFLINE_GATEWAY in GATEWAYS


def _per_device(series: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(s["tags"]["gw"], s["tags"]["dev"]): float(s["values"][0][1]) for s in series}


def test_oee_is_availability_times_performance_times_quality(loaded: tuple[Influx, TimeRange]) -> None:
    db, tr = loaded
    variables = {
        "park": format_value(list(PARKS), multi=True),
        "machine": format_value(["cnc-1"], multi=True),
        # The simulated machines make one part per running minute.
        "ideal_parts_per_h": "60",
    }
    oee = _per_device(_run(db, tr, "park-operations", "OEE", variables))
    a = _per_device(_run(db, tr, "park-operations", "Availability", variables))
    perf = _per_device(_run(db, tr, "park-operations", "Performance", variables))
    qual = _per_device(_run(db, tr, "park-operations", "Quality", variables))
    # Same device id on every gateway: the panels must keep them apart.
    assert set(oee) == {(gw, "cnc-1") for gw in GATEWAYS}
    for key, value in oee.items():
        assert value == pytest.approx(a[key] * perf[key] * qual[key] / 10_000, rel=1e-9)
        assert 60 < a[key] < 80
        assert 90 < perf[key] <= 101
        assert 85 < qual[key] < 95


def test_fleet_ledger_adds_up_the_ledgers_of_a_shared_subscription(influxdb: ServerProcess) -> None:
    """Two ingesters split one gateway's batches: the panels agree with the API's merge."""
    from datetime import UTC, datetime, timedelta

    from ingest.ledger import LossLedger
    from ingest.points import ledger_line
    from storage.query import Scope
    from storage.query_influx import InfluxQuery

    db = Influx(influxdb, f"pw_ledger_{uuid.uuid4().hex[:10]}")
    assert "error" not in db.query(f'CREATE DATABASE "{db.db}"')["results"][0]
    now_ms = int(time.time() * 1000)
    ingesters = [LossLedger(ingester="ing-a"), LossLedger(ingester="ing-b")]
    stream = [s for s in range(60) if s not in (17, 18, 40)]  # three batches never arrive
    lines_out = []
    for i, seq in enumerate(stream):
        ingesters[i % 2].observe("hp-x", "gw-1", seq)
        if i % 10 == 9:
            lines_out += [ledger_line(r) for led in ingesters for r in led.drain(now_ms - 60_000 + i * 100)]
    lines_out += [ledger_line(r) for led in ingesters for r in led.drain(now_ms - 1_000)]
    db.write("\n".join(lines_out))
    try:
        tr = TimeRange(from_ms=now_ms - 3_600_000, to_ms=now_ms + 60_000)
        one = {"park": format_value(["hp-x"], multi=True), "gw": format_value(["gw-1"], multi=True)}
        (table,) = _run(db, tr, "gateway-fleet", "Loss ledger totals", one)
        row = dict(zip(table["columns"], table["values"][0], strict=True))
        (lost,) = _run(db, tr, "gateway-fleet", "Readings lost", one)
        api = InfluxQuery(url=db.base, database=db.db).ledger(
            Scope(parks=("hp-x",), start=datetime.now(UTC) - timedelta(hours=1), end=datetime.now(UTC))
        )
        (merged,) = api.rows()
    finally:
        db.query(f'DROP DATABASE "{db.db}"')
    assert (row["received"], row["missing"], row["last_seq"]) == (57, 3, 59)
    assert lost["values"][0][1] == 3
    assert (merged["received"], merged["missing"], merged["last_seq"]) == (57, 3, 59)
    assert abs(row["loss_pct"] - 5.0) < 1e-9
