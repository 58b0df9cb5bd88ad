"""Status-code mapping of the InfluxDB HTTP client (httpx mock transport: unit level)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from storage.influx_http import (
    InfluxAuthError,
    InfluxDatabaseMissing,
    InfluxHTTP,
    InfluxQueryError,
    InfluxRejectedError,
    InfluxRetryableError,
    InfluxTooLargeError,
    is_loopback_url,
    use_gzip,
)


def _client(handler, **kw) -> InfluxHTTP:  # type: ignore[no-untyped-def]
    return InfluxHTTP(url="http://influx.test:8086", transport=httpx.MockTransport(handler), **kw)


async def test_write_sends_gzip_token_and_params() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    http = _client(handler, token="tok-123")
    await http.write("db1", b"m f=1.0 1", rp="short")
    await http.aclose()
    req = seen[0]
    assert req.url.path == "/write"
    assert dict(req.url.params) == {"db": "db1", "precision": "ns", "rp": "short"}
    assert req.headers["Authorization"] == "Token tok-123"
    assert req.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(req.content) == b"m f=1.0 1"


async def test_basic_auth_without_gzip() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    http = _client(handler, username="u", password="p", gzip=False)
    await http.write("db1", b"m f=1.0 1")
    await http.aclose()
    assert seen[0].headers["Authorization"].startswith("Basic ")
    assert seen[0].content == b"m f=1.0 1"


@pytest.mark.parametrize(
    ("status", "headers", "exc", "retry_after"),
    [
        (429, {"Retry-After": "7"}, InfluxRetryableError, 7.0),
        (503, {}, InfluxRetryableError, None),
        (500, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, InfluxRetryableError, None),
        (413, {}, InfluxTooLargeError, None),
        (400, {}, InfluxRejectedError, None),
        (422, {}, InfluxRejectedError, None),
        (401, {}, InfluxAuthError, None),
        (404, {}, InfluxDatabaseMissing, None),
    ],
)
async def test_write_status_mapping(
    status: int, headers: dict[str, str], exc: type[Exception], retry_after: float | None
) -> None:
    http = _client(lambda _r: httpx.Response(status, headers=headers, json={"error": "nope"}))
    with pytest.raises(exc) as info:
        await http.write("db", b"m f=1.0 1")
    await http.aclose()
    assert "nope" in str(info.value)
    if isinstance(info.value, InfluxRetryableError):
        assert info.value.retry_after_s == retry_after


async def test_connection_refused_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = _client(handler)
    with pytest.raises(InfluxRetryableError, match="unreachable"):
        await http.write("db", b"m f=1.0 1")
    await http.aclose()


async def test_query_error_inside_a_200() -> None:
    body = {"results": [{"statement_id": 0, "error": "database not found: x"}]}
    http = _client(lambda _r: httpx.Response(200, json=body))
    with pytest.raises(InfluxQueryError, match="database not found"):
        await http.query("SELECT 1", database="x")
    await http.aclose()


async def test_query_returns_results() -> None:
    body = {
        "results": [
            {"statement_id": 0, "series": [{"name": "m", "columns": ["time", "v"], "values": [[1, 2]]}]}
        ]
    }
    http = _client(lambda _r: httpx.Response(200, json=body))
    assert (await http.query("SELECT v FROM m"))[0]["series"][0]["values"] == [[1, 2]]
    await http.aclose()


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8086", True),
        ("http://127.3.2.1:8086", True),
        ("http://localhost:8086", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8086", True),
        ("http://10.0.0.5:8086", False),
        ("https://influx.example.com", False),
        ("http://127.0.0.1.example.com:8086", False),
        ("http://[::2]:8086", False),
    ],
)
def test_gzip_auto_is_off_on_loopback_only(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
    assert use_gzip("auto", url) is (not loopback)
    assert use_gzip(True, url) is True and use_gzip(False, url) is False
