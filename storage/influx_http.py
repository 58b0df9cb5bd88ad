"""Async client of InfluxDB's v1-compatible HTTP API: ``/write`` (line protocol) and ``/query`` (InfluxQL).

The same two endpoints are served by InfluxDB 1.x, 2.x (token auth; DBRP mapping since 2.4) and
3.x. Status codes are mapped to exceptions by what the caller should do::

    InfluxError
    ├── InfluxRetryableError      429, 5xx, connection refused/reset, timeout: retry later
    │   │                         (``retry_after_s`` from ``Retry-After`` when the server sent it)
    │   ├── InfluxAuthError       401/403: the credentials are wrong; retrying will not help soon
    │   └── InfluxDatabaseMissing 404 database not found: create it, then retry
    ├── InfluxTooLargeError       413: split the body and send the halves
    ├── InfluxRejectedError       400/422: a bad point (parse error, field type conflict, partial
    │                             write); the valid points of the body *were* written
    └── InfluxQueryError          ``/query`` answered 200 with an ``error`` in its results
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx
from isal import igzip

from settings.errors import RetryableError

_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_GZIP_IN_THREAD_BYTES: Final = 256 * 1024
"""Bodies from this size on are compressed in a worker thread (a few ms of CPU at level 1)."""


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_gzip(setting: bool | Literal["auto"], url: str) -> bool:
    """Whether to compress write bodies: as set, or for ``"auto"`` unless ``url`` is on loopback.

    On loopback compression saves no network; it costs the writer about 0.5 us of CPU per point
    (ISA-L level 1), and InfluxDB 1.x was measured taking gzip bodies faster than plain ones.
    """
    return (not is_loopback_url(url)) if setting == "auto" else setting


def quote_literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxError(Exception):
    """Any failure talking to InfluxDB."""


class InfluxRetryableError(InfluxError, RetryableError):
    """The server cannot take the request now; retry after ``retry_after_s`` (or a backoff)."""


class InfluxAuthError(InfluxRetryableError):
    """401/403: fix the token or user/password."""


class InfluxDatabaseMissing(InfluxRetryableError):
    """404: the database (or the DBRP mapping on 2.x) does not exist."""


class InfluxTooLargeError(InfluxError):
    """413: the body exceeds the server's ``max-body-size``."""


class InfluxRejectedError(InfluxError):
    """400/422: at least one point was rejected; the others were written."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InfluxQueryError(InfluxError):
    """An InfluxQL statement failed (reported inside a 200 answer)."""


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for InfluxDB; fall back to the caller's backoff


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return str(body)[:500]


class InfluxHTTP:
    """A connection pool to one InfluxDB server.

    Args:
        url: base URL such as ``http://127.0.0.1:8086``.
        token: API token (2.x/3.x); takes precedence over ``username``/``password``.
        username, password: v1 basic authentication.
        timeout_s: per-request timeout.
        gzip: compress write bodies (``Content-Encoding: gzip``).
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        *,
        url: str,
        token: str = "",
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        gzip: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if token:
            headers["Authorization"] = f"Token {token}"
        elif username:
            auth = (username, password)
        self._gzip = gzip
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    async def write(self, database: str, body: bytes, *, rp: str = "", precision: str = "ns") -> None:
        """POST line protocol to ``/write``.

        Raises:
            InfluxRetryableError, InfluxTooLargeError, InfluxRejectedError: see the module docstring.
        """
        params = {"db": database, "precision": precision}
        if rp:
            params["rp"] = rp
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._gzip:
            if len(body) >= _GZIP_IN_THREAD_BYTES:
                # ISA-L releases the GIL: the event loop goes on (decoding the next batch) meanwhile.
                body = await asyncio.to_thread(igzip.compress, body, 1)
            else:
                body = igzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            resp = await self._client.post("/write", params=params, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise InfluxRetryableError(
                f"InfluxDB at {str(self._client.base_url).rstrip('/')} unreachable: {exc!r}"
            ) from exc
        status = resp.status_code
        if status in (200, 204):
            return
        text = _error_text(resp)
        if status == 413:
            raise InfluxTooLargeError(f"InfluxDB: 413 request too large: {text}")
        if status in (400, 422):
            raise InfluxRejectedError(f"InfluxDB rejected points ({status}): {text}", status)
        if status in (401, 403):
            raise InfluxAuthError(f"InfluxDB: {status} not authorized: {text}; check token or user/password")
        if status == 404:
            raise InfluxDatabaseMissing(f"InfluxDB: {text}")
        if status in _RETRY_STATUSES or status >= 500:
            raise InfluxRetryableError(f"InfluxDB: {status}: {text}", _retry_after(resp))
        raise InfluxRejectedError(f"InfluxDB: unexpected status {status}: {text}", status)

    async def query(self, q: str, *, database: str = "", method: str = "POST") -> list[dict[str, Any]]:
        """Run InfluxQL and return its ``results`` list.

        Raises:
            InfluxQueryError: a statement failed.
            InfluxRetryableError: the server is unreachable or overloaded.
        """
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        try:
            if method == "GET":
                resp = await self._client.get("/query", params=params)
            else:
                resp = await self._client.post("/query", params=params)
        except httpx.TransportError as exc:
            raise InfluxRetryableError(
                f"InfluxDB at {str(self._client.base_url).rstrip('/')} unreachable: {exc!r}"
            ) from exc
        if resp.status_code in (401, 403):
            raise InfluxAuthError(f"InfluxDB: {resp.status_code} not authorized: {_error_text(resp)}")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise InfluxRetryableError(
                f"InfluxDB: {resp.status_code}: {_error_text(resp)}", _retry_after(resp)
            )
        if resp.status_code != 200:
            raise InfluxQueryError(f"InfluxDB query failed ({resp.status_code}): {_error_text(resp)}")
        try:
            body = resp.json()
        except json.JSONDecodeError as exc:
            raise InfluxQueryError(f"InfluxDB answered non-JSON: {resp.text[:200]}") from exc
        if "error" in body:
            raise InfluxQueryError(str(body["error"]))
        results: list[dict[str, Any]] = body.get("results", [])
        for res in results:
            if "error" in res:
                raise InfluxQueryError(str(res["error"]))
        return results

    async def aclose(self) -> None:
        await self._client.aclose()
