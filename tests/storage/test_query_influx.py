"""InfluxQL quoting and how the InfluxDB backend reads InfluxDB's answers (unit tests, mock transport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from storage.influx_http import quote_ident, quote_literal
from storage.query import QueryError, Scope
from storage.query_influx import InfluxQuery

SCOPE = Scope(parks=("p1",), start=datetime(2026, 11, 2, tzinfo=UTC), end=datetime(2026, 11, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [("p1", "'p1'"), ("a'b", "'a\\'b'"), ("a\\", "'a\\\\'"), ("x' OR '1'='1", "'x\\' OR \\'1\\'=\\'1'")],
)
def test_quote_literal(raw: str, quoted: str) -> None:
    assert quote_literal(raw) == quoted


def test_quote_ident() -> None:
    assert quote_ident('we"ird') == '"we\\"ird"'


def backend(handler: Any) -> tuple[InfluxQuery, list[str]]:
    seen: list[str] = []

    def wrapped(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode()))["q"])
        status, body = handler(request)
        return httpx.Response(status, content=json.dumps(body).encode())

    return InfluxQuery(url="http://influx.test", database="db", transport=httpx.MockTransport(wrapped)), seen


def test_error_inside_results_is_a_query_error() -> None:
    q, _ = backend(lambda r: (200, {"results": [{"statement_id": 0, "error": "boom"}]}))
    with pytest.raises(QueryError, match="boom"):
        q.machine_buckets(SCOPE, bucket_s=60)


def test_partial_answer_is_a_query_error() -> None:
    series = [
        {
            "name": "machine",
            "tags": {"park": "p1", "gw": "g", "dev": "d"},
            "columns": ["time", "a"],
            "values": [[0, 1.0]],
            "partial": True,
        }
    ]
    q, _ = backend(lambda r: (200, {"results": [{"statement_id": 0, "series": series}]}))
    with pytest.raises(QueryError, match="truncated"):
        q.machine_buckets(SCOPE, bucket_s=60)


def test_missing_database_reads_as_empty() -> None:
    q, _ = backend(lambda r: (200, {"results": [{"statement_id": 0, "error": "database not found: db"}]}))
    assert len(q.ledger(SCOPE)) == 0


def test_http_error_status_is_a_query_error() -> None:
    q, _ = backend(lambda r: (401, {"error": "authorization failed"}))
    with pytest.raises(QueryError, match="401"):
        q.ledger(SCOPE)


def test_unreachable_is_a_query_error() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    q = InfluxQuery(url="http://influx.test", transport=httpx.MockTransport(fail))
    with pytest.raises(QueryError, match="unreachable"):
        q.ping()


def test_statement_shape_and_values_are_quoted() -> None:
    q, seen = backend(lambda r: (200, {"results": [{"statement_id": 0}]}))
    evil = Scope(parks=("p1' OR '1'='1",), start=SCOPE.start, end=SCOPE.end, bbox=(106.7, 20.7, 106.8, 20.9))
    q.field_buckets("machine", evil, bucket_s=60, field="spindle_temp_c", agg="min")
    start_ns, end_ns = int(SCOPE.start.timestamp()) * 10**9, int(SCOPE.end.timestamp()) * 10**9
    assert seen == [
        f'SELECT MIN("spindle_temp_c") AS value FROM "machine" WHERE time >= {start_ns} AND time < '
        f"{end_ns} AND (park = 'p1\\' OR \\'1\\'=\\'1') AND lon >= 106.7 AND lon <= 106.8 AND "
        f"lat >= 20.7 AND lat <= 20.9 GROUP BY time(60s), park, gw, dev fill(none)"
    ]
