"""The FastAPI application: JSON errors, the response cache, health and metrics, and the routes.

Routes live in ``routes_coverage`` (coverage and exports), ``routes_operations`` (broadband,
factory, alarms, fleet), ``routes_live`` (the dashboard's event stream) and ``routes_provisioning``
(gateways, broker files, keys); the read logic in ``services``, the typed answers in ``models``,
shared dependencies in ``deps``. ``create_app(settings, backend=..., registry=...)`` builds it;
``parkwatch api`` serves it with uvicorn. The built-in web dashboard (another package) mounts at
``/dashboard`` via ``dashboard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from api import (
    live,
    models,
    routes_coverage,
    routes_deadletters,
    routes_imports,
    routes_live,
    routes_operations,
    routes_parks,
    routes_prediction,
    routes_provisioning,
    routes_reports,
    routes_series,
    routes_sites,
)
from api.alarms import loop as alarm_loop
from api.alarms import routes as alarm_routes
from api.alarms.engine import AlarmEngine
from api.alarms.loop import LoopStats
from api.alarms.notify import Notifier
from api.auth import KeyRecord, KeyRing, key_hash
from api.cache import ReadCache
from api.deps import ERRORS, Context, document_limits, error_response
from api.errors import ApiError
from api.live import utc_now
from api.metrics import Metrics
from api.registry import Registry
from api.services import Services
from api.web.docs import add_offline_docs
from settings.api import ApiSettings
from storage.alarm_store import AlarmStore
from storage.places import Places
from storage.query import QueryBackend, QueryError

log = logging.getLogger("parkwatch.api")


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

RESPONSE_CACHE_MAX_BYTES: Final = 64 * 1024 * 1024
"""The encoded answers kept for identical reads weigh at most this together (least recently used
go first)."""


def _answer_bytes(entry: tuple[bytes, str, str]) -> int:
    return len(entry[0])


_CACHED_PREFIXES: Final = (
    "/api/v1/coverage/",
    "/api/v1/broadband/",
    "/api/v1/factory/",
    "/api/v1/export/",
)


def _cache_key(request: Request) -> tuple[str, str, str] | None:
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
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """Build the API application over a query backend and the key/gateway registry; ``clock`` is
    "now" of requests without ``to`` (their live views, :mod:`api.live`)."""
    services = Services.build(
        settings,
        backend,
        registry_parks=_registry_parks(registry),
        sites_path=str(registry.path),
        clock=clock,
    )
    metrics = Metrics()
    # Alarm state lives beside the keys, in the registry file every deployment has.
    alarm_engine = AlarmEngine(settings.alarms, AlarmStore(registry.path), services.alarms)
    alarm_engine.seed(int(time.time() * 1000))
    alarm_stats = LoopStats()
    app = FastAPI(
        title="parkwatch API",
        version="1",
        description="Coverage, dead zones, broadband, factory KPIs, alarms, fleet and provisioning.",
        responses=ERRORS,
        lifespan=_closing(services, alarm_engine, alarm_stats),
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = metrics

    # Encoded answers of identical reads (same path, query and key) for ``cache_ttl_s``; while one
    # request recomputes an expired answer, identical ones get the old answer for ``cache_stale_s``,
    # and those with no answer to get wait for it (single flight).
    # A dashboard asks for "the last 7 days" with its own clock in ``from``: every request is a new
    # key, and a coverage page is up to a few MB, so entries are bounded by bytes as well.
    response_cache = ReadCache(
        settings.api.cache_ttl_s,
        max_entries=1024,
        stale_s=settings.api.cache_stale_s,
        max_bytes=RESPONSE_CACHE_MAX_BYTES,
        size_of=_answer_bytes,
    )
    inflight: dict[Hashable, asyncio.Future[tuple[bytes, str, str] | None]] = {}
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

    _handle_errors(app, metrics)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        key = _cache_key(request)
        if key is not None and not keyring().knows(key[2]):
            key = None  # unknown or revoked: no cached answer; the route answers 401
        hit, fresh = (None, False) if key is None else response_cache.lookup(key)
        if hit is not None and not fresh and key not in inflight:
            hit = None  # stale and nobody recomputing it: this request does
        if hit is None and key is not None and key in inflight:
            # Single flight: an identical read being computed; wait for its answer.
            hit = await asyncio.shield(inflight[key])
        if hit is not None:
            response: Response = Response(hit[0], media_type=hit[1], headers={"X-Cache": "hit"})
            path = hit[2]
        else:
            waiter: asyncio.Future[tuple[bytes, str, str] | None] | None = None
            if key is not None and response_cache.ttl_s > 0:
                waiter = inflight[key] = asyncio.get_running_loop().create_future()
            stored: tuple[bytes, str, str] | None = None
            try:
                response = await call_next(request)
                route = request.scope.get("route")
                path = getattr(route, "path", "unmatched")
                if waiter is not None and response.status_code == 200:
                    response, stored = await _stored(response_cache, key, response, path)
            finally:
                if key is not None and waiter is not None:
                    if inflight.get(key) is waiter:
                        del inflight[key]
                    waiter.set_result(stored)
        metrics.observe(request.method, path, response.status_code, time.perf_counter() - t0)
        return response

    # -- health -------------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"], summary="The process is alive.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database and the registry answer.",
        responses={
            **models.ok(models.Readiness, "Ready: every check answered `ok`."),
            503: {
                "description": "Not ready: the failing checks say why.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}},
            },
        },
    )
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
        cache = services.cache
        gauges = {
            "cache_hits": float(cache.hits),
            "cache_misses": float(cache.misses),
            "cache_refresh_errors": float(cache.refresh_errors),
            "live_view_refreshes": float(services.coverage.live.stats.refreshes),
            "live_view_refresh_errors": float(services.coverage.live.stats.errors),
            "live_view_refresh_seconds": services.coverage.live.stats.busy_s,
            "alarm_evaluations": float(alarm_stats.evaluations),
            "alarm_evaluation_errors": float(alarm_stats.errors),
        }
        return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")

    ctx = Context(
        settings=settings,
        services=services,
        registry=registry,
        config_keys=config_keys,
        invalidate_keys=invalidate_keys,
    )
    app.state.ctx = ctx
    for router in (
        routes_coverage.router,
        routes_operations.router,
        routes_live.router,
        routes_sites.router,
        routes_reports.router,
        routes_prediction.router,
        routes_series.router,
    ):
        app.include_router(router)
    app.include_router(routes_provisioning.build(ctx))
    app.include_router(routes_parks.build(ctx))
    app.include_router(routes_deadletters.build(ctx))
    app.include_router(routes_imports.build(ctx))
    app.include_router(alarm_routes.build(ctx, alarm_engine))
    app.state.alarm_engine = alarm_engine
    _document(app, settings.api.max_page_size)
    add_offline_docs(app)
    if dashboard is not None:

        @app.get("/", include_in_schema=False)
        async def to_dashboard() -> RedirectResponse:
            # Relative, so that a reverse proxy may serve the API under a path prefix.
            return RedirectResponse(url="dashboard/", status_code=307)

        app.mount("/dashboard", dashboard)
    return app


def _file_stamp(path: str) -> tuple[int, ...]:
    """Modification times and sizes of an SQLite file and its write-ahead log (0 when absent)."""
    out: list[int] = []
    for name in (path, path + "-wal"):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            out += [0, 0]
        else:
            out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


def _registry_parks(registry: Registry) -> Callable[[], dict[str, tuple[tuple[float, float], ...]]] | None:
    """Parks created at run time (id → boundary), read again from the registry file whenever the
    file changed (by this API, ``parkwatch park create`` or another replica)."""
    if registry.path == ":memory:":
        return None
    lock = threading.Lock()
    state: dict[str, Any] = {"stamp": None, "parks": {}}

    def read() -> dict[str, tuple[tuple[float, float], ...]]:
        with lock:
            stamp = _file_stamp(registry.path)
            if stamp != state["stamp"]:
                places = Places(registry.path)
                try:
                    state["parks"] = {p.id: p.boundary for p in places.parks()}
                finally:
                    places.close()
                state["stamp"] = stamp  # a change made while reading shows as a new stamp next time
            parks: dict[str, tuple[tuple[float, float], ...]] = state["parks"]
            return parks

    return read


def _closing(
    services: Services, engine: AlarmEngine, stats: LoopStats
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the alarm evaluator and the refresher of live coverage views run while
    the app serves; at shutdown they stop, and so does the cache's background refresh."""
    cache = services.cache
    views = services.coverage.live

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        interval_s = engine.settings.evaluate_interval_s
        notifier = Notifier(engine.settings, engine.store)
        task = (
            asyncio.create_task(
                alarm_loop.run(engine, interval_s=interval_s, stop=stop, stats=stats, notify=notifier.drain),
                name="alarm-evaluator",
            )
            if interval_s > 0
            else None
        )
        refresher = (
            asyncio.create_task(
                live.run(views, services.coverage.warm_live, stop=stop), name="live-view-refresher"
            )
            if views.enabled
            else None
        )
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if refresher is not None:
                await refresher
            cache.close()

    return lifespan


def _handle_errors(app: FastAPI, metrics: Metrics) -> None:
    """Every error answers JSON (:class:`api.deps.Problem`); unexpected ones are logged and counted."""

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


async def _stored(
    cache: ReadCache, key: Hashable, response: Response, path: str
) -> tuple[Response, tuple[bytes, str, str] | None]:
    """Read a streamed 200 answer into memory, keep it under ``key``; the answer and the entry."""
    if not hasattr(response, "body_iterator"):
        return response, None
    body = b"".join([bytes(c) async for c in response.body_iterator])
    entry = (body, response.media_type or "application/json", path)
    cache.put(key, entry)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body, status_code=200, headers=headers, media_type=response.media_type), entry


def _document(app: FastAPI, max_page_size: int) -> None:
    """Complete the OpenAPI document: the answer models' schemas and the configured page-size bound."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(models.schema_components())
            document_limits(schema, max_page_size)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
