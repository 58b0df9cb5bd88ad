"""The FastAPI application: JSON errors, the read cache, health and metrics, and the routes.

Routes live in ``routes_coverage`` (coverage and exports), ``routes_operations`` (broadband,
factory, alarms, fleet) and ``routes_provisioning`` (gateways, broker files, keys); shared models
and access-control dependencies in ``deps``. ``create_app(settings, backend=..., registry=...)``
builds it; ``parkwatch api`` serves it with
uvicorn. The built-in web dashboard (another package) mounts at ``/dashboard`` via ``dashboard``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from api import (
    routes_coverage,
    routes_deadletters,
    routes_live,
    routes_operations,
    routes_parks,
    routes_provisioning,
)
from api.auth import KeyRecord, KeyRing, key_hash
from api.deps import ERRORS, Context, error_response
from api.errors import ApiError
from api.metrics import Metrics
from api.registry import Registry
from api.service import Service, TtlCache
from settings.api import ApiSettings
from storage.query import QueryBackend, QueryError

log = logging.getLogger("parkwatch.api")


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_CACHED_PREFIXES: Final = (
    "/api/v1/coverage/",
    "/api/v1/broadband/",
    "/api/v1/factory/",
    "/api/v1/alarms",
    "/api/v1/export/",
)


def _cache_key(request: Request) -> tuple[str, ...] | None:
    """Key of a cacheable read: path, sorted query and the hash of the presented key.

    Including the key's hash keeps access control intact: an answer is only ever replayed to the
    key it was computed for; the middleware also checks that the key is still valid before it
    replays an answer, so a revoked key gets no cached answer either.
    """
    if request.method != "GET" or not request.url.path.startswith(_CACHED_PREFIXES):
        return None
    presented = request.headers.get("x-api-key") or request.headers.get("authorization") or ""
    query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
    return (request.url.path, query, key_hash(presented))


def create_app(
    settings: ApiSettings,
    *,
    backend: QueryBackend,
    registry: Registry,
    dashboard: ASGIApp | None = None,
) -> FastAPI:
    """Build the API application over a query backend and the key/gateway registry."""
    service = Service(settings, backend)
    metrics = Metrics()
    app = FastAPI(
        title="parkwatch API",
        version="1",
        description="Coverage, dead zones, broadband, factory KPIs, alarms, fleet and provisioning.",
        responses=ERRORS,
    )
    app.state.service = service
    app.state.metrics = metrics

    response_cache = TtlCache(settings.api.cache_ttl_s, max_entries=1024, stale_s=settings.api.cache_stale_s)
    inflight: dict[tuple[str, ...], asyncio.Future[Any]] = {}
    background: set[asyncio.Task[None]] = set()
    keyring_lock = threading.Lock()
    keyring_cache: dict[str, Any] = {"at": 0.0, "ring": None}
    config_keys = [
        KeyRecord(sha256=k.sha256, name=k.name, role=k.role, parks=tuple(k.parks)) for k in settings.keys
    ]

    def keyring() -> KeyRing:
        # Keys created through the API land in the registry; re-read it at most once a second.
        with keyring_lock:
            now = time.monotonic()
            if keyring_cache["ring"] is None or now - keyring_cache["at"] > 1.0:
                keyring_cache["ring"] = KeyRing([*config_keys, *registry.api_keys()])
                keyring_cache["at"] = now
            ring: KeyRing = keyring_cache["ring"]
            return ring

    def invalidate_keys() -> None:
        with keyring_lock:
            keyring_cache["ring"] = None

    app.state.keyring = keyring

    # -- errors and metrics -------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(QueryError)
    async def _on_query_error(_: Request, exc: QueryError) -> JSONResponse:
        metrics.inc("backend_errors")
        log.warning("query backend error: %s", exc)
        return error_response(503, "unavailable", f"the database did not answer: {exc}; retry later")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(x) for x in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = details[0] if details else {"where": "request", "problem": "invalid"}
        return error_response(
            422, "invalid_parameter", f"{first['where']}: {first['problem']}", details=details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            # RFC 9110 §15.5.6: ``Allow`` lists every method of the resource; Starlette names only
            # those of the first route whose path matched (``GET /keys`` and ``POST /keys`` are two).
            allowed = [
                m
                for m in _METHODS
                if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in app.router.routes)
            ]
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The top of the request loop: log with context, count, answer JSON.
        metrics.inc("unhandled_errors")
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "unexpected server error; it was logged")

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        refreshing = bool(request.scope.get("parkwatch.refresh"))
        key = _cache_key(request)
        if key is not None and not keyring().knows(key[2]):
            key = None  # unknown or revoked: no cached answer; the route answers 401
        hit, fresh = (None, False) if key is None or refreshing else response_cache.lookup(key)
        if hit is not None and not fresh and key not in inflight:
            # Stale while revalidate: answer from the cache, refresh it once in the background.
            refresh_task = asyncio.create_task(_refresh(request))
            background.add(refresh_task)
            refresh_task.add_done_callback(background.discard)
        if hit is None and key is not None and not refreshing and key in inflight:
            # Single flight: identical reads arriving while one is computed wait for its answer.
            hit = await asyncio.shield(inflight[key])
        if hit is not None:
            response: Response = Response(hit[0], media_type=hit[1], headers={"X-Cache": "hit"})
            path = hit[2]
        else:
            waiter: asyncio.Future[Any] | None = None
            entry: tuple[bytes, str, str] | None = None
            if key is not None and response_cache.ttl_s > 0:
                waiter = asyncio.get_running_loop().create_future()
                inflight[key] = waiter
            try:
                response = await call_next(request)
                route = request.scope.get("route")
                path = getattr(route, "path", "unmatched")
                if waiter is not None and response.status_code == 200 and hasattr(response, "body_iterator"):
                    body = b"".join([bytes(c) async for c in response.body_iterator])
                    entry = (body, response.media_type or "application/json", path)
                    response_cache.put(key, entry)
                    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
                    response = Response(
                        body, status_code=200, headers=headers, media_type=response.media_type
                    )
            finally:
                if key is not None and waiter is not None:
                    if inflight.get(key) is waiter:
                        del inflight[key]
                    waiter.set_result(entry)
        metrics.observe(request.method, path, response.status_code, time.perf_counter() - t0)
        return response

    async def _refresh(request: Request) -> None:
        """Re-run a cached GET through the whole app; the middleware stores the new answer."""
        scope = {**request.scope, "parkwatch.refresh": True}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_message: Any) -> None:
            return None

        try:
            await app(scope, receive, send)
        except Exception:  # the top of a background refresh: logged and counted
            metrics.inc("cache_refresh_errors")
            log.warning("background refresh of %s failed", request.url.path, exc_info=True)

    # -- health -------------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"], summary="The process is alive.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database and the registry answer.")
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            backend.ping()
            checks["backend"] = "ok"
        except QueryError as exc:
            checks["backend"] = str(exc)
        try:
            registry.ping()
            checks["registry"] = "ok"
        except sqlite3.Error as exc:
            checks["registry"] = str(exc)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics.", response_class=PlainTextResponse)
    def metrics_text() -> PlainTextResponse:
        gauges = {"cache_hits": float(service.cache.hits), "cache_misses": float(service.cache.misses)}
        return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")

    ctx = Context(
        settings=settings,
        service=service,
        registry=registry,
        config_keys=config_keys,
        invalidate_keys=invalidate_keys,
    )
    for build in (
        routes_coverage.build,
        routes_operations.build,
        routes_provisioning.build,
        routes_live.build,
        routes_parks.build,
        routes_deadletters.build,
    ):
        app.include_router(build(ctx))
    if dashboard is not None:

        @app.get("/", include_in_schema=False)
        async def to_dashboard() -> RedirectResponse:
            # Relative, so that a reverse proxy may serve the API under a path prefix.
            return RedirectResponse(url="dashboard/", status_code=307)

        app.mount("/dashboard", dashboard)
    return app


__all__ = ["create_app"]
