"""The FastAPI application: ``/api/v1`` routes, access control, JSON errors, health and metrics.

``create_app(settings, backend=..., registry=...)`` builds it; ``parkwatch api`` serves it with
uvicorn. The built-in web dashboard (another package) mounts at ``/dashboard`` via ``dashboard``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from analytics.coverage import cell_area_m2, cell_features, cell_polygon, cell_str
from api import mosquitto
from api.auth import KeyRecord, KeyRing, Principal, Role, key_hash, new_key
from api.errors import ApiError, BadRequest, NotFound
from api.exports import MEDIA_TYPES, ExportFormat, feature_collection, to_csv, to_kml
from api.metrics import Metrics
from api.params import (
    BboxQ,
    FromQ,
    GwQ,
    LimitQ,
    OffsetQ,
    OperatorQ,
    ParkQ,
    ResolutionQ,
    SignalClass,
    TechQ,
    ToQ,
    bbox,
    page_size,
    resolution,
    window,
)
from api.registry import Registry
from api.service import Service, TtlCache
from contract.ids import ID_PATTERN
from settings.api import ApiSettings
from storage.query import QueryBackend, QueryError, Scope

log = logging.getLogger("parkwatch.api")

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


class Problem(BaseModel):
    """The body of every error answer."""

    error: dict[str, Any] = Field(
        examples=[{"code": "invalid_parameter", "message": "bbox must be four numbers"}]
    )


class GatewayIn(BaseModel):
    """A gateway to register."""

    park: str = Field(pattern=ID_PATTERN, max_length=64)
    gw: str = Field(pattern=ID_PATTERN, max_length=64)
    description: str = Field(default="", max_length=256)


class KeyIn(BaseModel):
    """An API key to create."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.@\-]{0,63}$")
    role: Role = "viewer"
    parks: list[str] = Field(default_factory=list, max_length=100)

    def checked_parks(self) -> tuple[str, ...]:
        for p in self.parks:
            if not re.match(ID_PATTERN, p):
                raise BadRequest(f"invalid park id {p[:64]!r}")
        return tuple(sorted(set(self.parks)))


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or unknown API key"},
    403: {"model": Problem, "description": "role or park not allowed"},
    422: {"model": Problem, "description": "invalid parameter"},
    503: {"model": Problem, "description": "database unavailable"},
}


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _json(obj: Any, *, geo: bool = False) -> Response:
    """JSON through msgspec (NaN becomes null); FastAPI's own encoder is ~50x slower on GeoJSON."""
    return Response(
        msgspec.json.encode(obj), media_type="application/geo+json" if geo else "application/json"
    )


def _page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    chunk = items[offset : offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return {"total": len(items), "limit": limit, "offset": offset, "next_offset": nxt, "items": chunk}


def _gw_path(gw: str) -> str:
    if len(gw) > 64 or not re.match(ID_PATTERN, gw):
        raise BadRequest(
            "gateway id: use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    return gw


def _service_path(username: str) -> str:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", username):
        raise BadRequest("username: use 1-64 characters from A-Z a-z 0-9 _ . -")
    return username


def _principal(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    ring: KeyRing = request.app.state.keyring()
    return ring.authenticate(api_key or (bearer.credentials if bearer else None))


def _role(required: Role) -> Callable[[Principal], Principal]:
    def check(p: Annotated[Principal, Depends(_principal)]) -> Principal:
        p.require(required)
        return p

    return check


Viewer = Annotated[Principal, Depends(_role("viewer"))]
Planner = Annotated[Principal, Depends(_role("planner"))]
Engineer = Annotated[Principal, Depends(_role("engineer"))]
Admin = Annotated[Principal, Depends(_role("admin"))]
GwPath = Annotated[str, Depends(_gw_path)]
UserPath = Annotated[str, Depends(_service_path)]
ParkRequired = Annotated[str, Query(pattern=ID_PATTERN, max_length=64, description="Park id of the gateway.")]


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
    key it was computed for (a revoked key keeps its cached answers for at most ``cache_ttl_s``).
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
    cov = settings.coverage
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

    def scope(
        p: Principal,
        park: str | None,
        start: Any,
        end: Any,
        *,
        operator: str | None = None,
        tech: str | None = None,
        box: str | None = None,
        gw: str | None = None,
    ) -> Scope:
        w = window(start, end, default_days=cov.default_window_days, max_days=cov.max_window_days)
        return Scope(
            parks=p.scope_parks(park),
            start=w.start,
            end=w.end,
            operator=operator,
            tech=tech,
            bbox=bbox(box),
            gw=gw,
        )

    def res(value: int | None) -> int:
        return resolution(
            value, default=cov.default_resolution, coarsest=cov.min_resolution, finest=cov.ingest_resolution
        )

    # -- errors and metrics -------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(QueryError)
    async def _query_error(_: Request, exc: QueryError) -> JSONResponse:
        metrics.inc("backend_errors")
        log.warning("query backend error: %s", exc)
        return _error(503, "unavailable", f"the database did not answer: {exc}; retry later")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(x) for x in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = details[0] if details else {"where": "request", "problem": "invalid"}
        return _error(422, "invalid_parameter", f"{first['where']}: {first['problem']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The top of the request loop: log with context, count, answer JSON.
        metrics.inc("unhandled_errors")
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "unexpected server error; it was logged")

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        refreshing = bool(request.scope.get("parkwatch.refresh"))
        key = _cache_key(request)
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
        except Exception as exc:  # noqa: BLE001 - any registry failure means not ready
            checks["registry"] = str(exc)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics.", response_class=PlainTextResponse)
    def metrics_text() -> PlainTextResponse:
        gauges = {"cache_hits": float(service.cache.hits), "cache_misses": float(service.cache.misses)}
        return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")

    v1 = APIRouter(prefix="/api/v1")

    # -- coverage -----------------------------------------------------------------------------

    def _cells(sc: Scope, r: int) -> list[dict[str, Any]]:
        c = service.coverage(sc, r)
        return cell_features(c.stats, c.classes, min_samples=c.min_samples)

    @v1.get(
        "/coverage/cells",
        tags=["coverage"],
        summary="Coverage grid per H3 cell, operator and technology (GeoJSON).",
    )
    def coverage_cells(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        r = res(resolution)
        pg = _page(_cells(sc, r), page_size(limit, settings.api.max_page_size), offset)
        feats = pg.pop("items")
        fc = feature_collection(feats, resolution=r, window=[sc.start.isoformat(), sc.end.isoformat()], **pg)
        return _json(fc, geo=True)

    def _zones(sc: Scope, r: int, max_class: str) -> list[dict[str, Any]]:
        return [z.feature(i + 1) for i, z in enumerate(service.dead_zones(sc, r, max_class))]

    @v1.get("/coverage/dead-zones", tags=["coverage"], summary="Dead zones ranked by area (GeoJSON).")
    def coverage_dead_zones(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        max_class: SignalClass | None = None,
        limit: LimitQ = 100,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        r = res(resolution)
        pg = _page(
            _zones(sc, r, max_class or cov.dead_zone_max_class),
            page_size(limit, settings.api.max_page_size),
            offset,
        )
        feats = pg.pop("items")
        fc = feature_collection(
            feats,
            resolution=r,
            max_class=max_class or cov.dead_zone_max_class,
            window=[sc.start.isoformat(), sc.end.isoformat()],
            **pg,
        )
        return _json(fc, geo=True)

    @v1.get("/coverage/gaps", tags=["coverage"], summary="Survey gaps: park cells without samples (GeoJSON).")
    def coverage_gaps(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        resolution: ResolutionQ = None,
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech)
        r = res(resolution)
        gaps = service.gaps(sc, r)
        pg = _page(gaps, page_size(limit, settings.api.max_page_size), offset)
        feats = [
            {
                "type": "Feature",
                "id": f"{pk}:{cell_str(c)}",
                "geometry": {"type": "Polygon", "coordinates": [[list(x) for x in cell_polygon(c)]]},
                "properties": {"park": pk, "h3": cell_str(c), "area_m2": round(cell_area_m2(c), 1)},
            }
            for pk, c in pg.pop("items")
        ]
        total_area = sum(cell_area_m2(c) for _, c in gaps)
        return _json(
            feature_collection(feats, resolution=r, gap_area_m2=round(total_area, 1), **pg), geo=True
        )

    @v1.get(
        "/coverage/summary",
        tags=["coverage"],
        summary="Coverage per park, operator and technology, with change.",
    )
    def coverage_summary(
        p: Viewer,
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        resolution: ResolutionQ = None,
        max_class: SignalClass | None = None,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech)
        r = res(resolution)
        items = service.summary(sc, r, max_class or cov.dead_zone_max_class)
        return _json({"window": [sc.start.isoformat(), sc.end.isoformat()], "resolution": r, "items": items})

    # -- broadband, factory, alarms -----------------------------------------------------------

    @v1.get(
        "/broadband/summary", tags=["broadband"], summary="Broadband quality per gateway or park vs targets."
    )
    def broadband_summary(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        gw: GwQ = None,
        by: Literal["gw", "park"] = "gw",
    ) -> Response:
        sc = scope(p, park, start, to, gw=gw)
        return _json(
            {"window": [sc.start.isoformat(), sc.end.isoformat()], "items": service.broadband(sc, by)}
        )

    @v1.get("/factory/machines", tags=["factory"], summary="Machines with production figures in the window.")
    def factory_machines(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        items = service.oee(sc, "machine")
        return _json(_page(items, page_size(limit, settings.api.max_page_size), offset))

    @v1.get("/factory/oee", tags=["factory"], summary="Availability, performance, quality and OEE.")
    def factory_oee(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        level: Literal["machine", "line", "factory", "park"] = "line",
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        out = _page(service.oee(sc, level), page_size(limit, settings.api.max_page_size), offset)
        return _json({"level": level, "window": [sc.start.isoformat(), sc.end.isoformat()], **out})

    @v1.get("/factory/energy", tags=["factory"], summary="Energy (kWh) and peak demand (kW).")
    def factory_energy(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        level: Literal["meter", "line", "factory", "park"] = "factory",
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        sc = scope(p, park, start, to)
        out = _page(service.energy(sc, level), page_size(limit, settings.api.max_page_size), offset)
        return _json({"level": level, "window": [sc.start.isoformat(), sc.end.isoformat()], **out})

    @v1.get("/alarms", tags=["alarms"], summary="Active alarms and alarm history.")
    def alarms(
        p: Viewer,
        park: ParkQ = None,
        start: FromQ = None,
        to: ToQ = None,
        active: bool | None = None,
        limit: LimitQ = 1000,
        offset: OffsetQ = 0,
    ) -> Response:
        if start is None and to is None:
            now = time.time()
            to_dt = datetime.fromtimestamp(now, UTC)
            sc = scope(p, park, to_dt - timedelta(seconds=settings.alarms.lookback_s), to_dt)
        else:
            sc = scope(p, park, start, to)
        items = service.alarms(sc, int(time.time() * 1000))
        if active is not None:
            items = [a for a in items if a["active"] == active]
        return _json(_page(items, page_size(limit, settings.api.max_page_size), offset))

    # -- fleet and provisioning ---------------------------------------------------------------

    def _fleet(p: Principal, park: str | None, gw: str | None = None) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        sc = Scope(parks=p.scope_parks(park), start=now, end=now, gw=gw)
        items = {(g["park"], g["gw"]): g for g in service.fleet(sc, int(now.timestamp() * 1000))}
        for rec in registry.gateways():
            if not p.may_see(rec.park) or (park and rec.park != park) or (gw and rec.gw != gw):
                continue
            g = items.setdefault(
                (rec.park, rec.gw), {"park": rec.park, "gw": rec.gw, "last_seen_ms": None, "online": False}
            )
            g["registered"] = True
            g["description"] = rec.description
        for g in items.values():
            g.setdefault("registered", False)
        return [items[k] for k in sorted(items)]

    @v1.get(
        "/gateways",
        tags=["fleet"],
        summary="Gateways: last seen, online, agent, backlog, uplink, loss ledger.",
    )
    def gateways(p: Viewer, park: ParkQ = None, limit: LimitQ = 1000, offset: OffsetQ = 0) -> Response:
        return _json(_page(_fleet(p, park), page_size(limit, settings.api.max_page_size), offset))

    @v1.get(
        "/gateways/{gw}", tags=["fleet"], summary="One gateway (give `park` when the id exists in several)."
    )
    def gateway(p: Viewer, gw: GwPath, park: ParkQ = None) -> Response:
        items = _fleet(p, park, gw)
        if not items:
            raise NotFound(f"no gateway {gw!r} visible to this key")
        if len(items) > 1:
            raise BadRequest(f"gateway id {gw!r} exists in parks {[g['park'] for g in items]}: add ?park=")
        return _json(items[0])

    def _issue(park: str, gw: str, *, new: bool, description: str = "") -> dict[str, Any]:
        prov = settings.provisioning
        password = mosquitto.new_password()
        pw_hash = mosquitto.hash_password(password, iterations=prov.pbkdf2_iterations)
        username = mosquitto.gateway_username(park, gw)
        if new:
            registry.add_gateway(
                park=park, gw=gw, description=description, username=username, password_hash=pw_hash
            )
        else:
            registry.set_password(park=park, gw=gw, password_hash=pw_hash)
        return {
            "park": park,
            "gw": gw,
            "mqtt": {
                "host": prov.broker_host,
                "port": prov.broker_port,
                "username": username,
                "password": password,
            },
            "edge_config": mosquitto.edge_config(
                park=park,
                gw=gw,
                username=username,
                password=password,
                host=prov.broker_host,
                port=prov.broker_port,
                topic_root=prov.topic_root,
                tls=prov.tls,
            ),
            "note": "the password is shown only once; regenerate the broker's password and ACL files",
        }

    @v1.post(
        "/gateways",
        tags=["provisioning"],
        status_code=201,
        summary="Register a gateway; returns its credentials once.",
    )
    def register_gateway(p: Engineer, body: GatewayIn) -> dict[str, Any]:
        p.scope_parks(body.park)
        return _issue(body.park, body.gw, new=True, description=body.description)

    @v1.post(
        "/gateways/{gw}/credentials",
        tags=["provisioning"],
        summary="Issue new MQTT credentials for a gateway.",
    )
    def rotate_credentials(p: Engineer, gw: GwPath, park: ParkRequired) -> dict[str, Any]:
        p.scope_parks(park)
        if registry.gateway(park, gw) is None:
            raise NotFound(f"gateway {gw!r} of park {park!r} is not registered: POST /api/v1/gateways first")
        return _issue(park, gw, new=False)

    @v1.get(
        "/provisioning/mosquitto/passwd",
        tags=["provisioning"],
        response_class=PlainTextResponse,
        summary="Mosquitto password file of every provisioned account.",
    )
    def mosquitto_passwd(p: Admin) -> PlainTextResponse:
        entries = [(g.username, g.password_hash) for g in registry.gateways()] + registry.services()
        return PlainTextResponse(mosquitto.password_file(entries))

    @v1.get(
        "/provisioning/mosquitto/acl",
        tags=["provisioning"],
        response_class=PlainTextResponse,
        summary="Mosquitto ACL file: each gateway on its own topics.",
    )
    def mosquitto_acl(p: Admin) -> PlainTextResponse:
        prov = settings.provisioning
        text = mosquitto.acl_file(
            [(g.park, g.gw) for g in registry.gateways()],
            topic_root=prov.topic_root,
            ingest_username=prov.ingest_username,
        )
        return PlainTextResponse(text)

    @v1.post(
        "/provisioning/services/{username}",
        tags=["provisioning"],
        summary="Create or reset a service account (e.g. the ingester); returns its password once.",
    )
    def service_account(p: Admin, username: UserPath) -> dict[str, Any]:
        password = mosquitto.new_password()
        registry.set_service(
            username=username,
            password_hash=mosquitto.hash_password(
                password, iterations=settings.provisioning.pbkdf2_iterations
            ),
        )
        return {"username": username, "password": password}

    @v1.post("/keys", tags=["admin"], status_code=201, summary="Create an API key; returns it once.")
    def create_key(p: Admin, body: KeyIn) -> dict[str, Any]:
        key = new_key()
        parks = body.checked_parks()
        registry.add_key(sha256=key_hash(key), name=body.name, role=body.role, parks=parks)
        invalidate_keys()
        return {"name": body.name, "role": body.role, "parks": list(parks), "key": key}

    @v1.get("/keys", tags=["admin"], summary="API keys (names, roles, parks; never the keys).")
    def list_keys(p: Admin) -> dict[str, Any]:
        items = [
            {"name": k.name, "role": k.role, "parks": list(k.parks), "source": "registry"}
            for k in registry.api_keys()
        ]
        items += [
            {"name": k.name, "role": k.role, "parks": list(k.parks), "source": "config"} for k in config_keys
        ]
        return {"items": items}

    # -- exports ------------------------------------------------------------------------------

    def _export(features: list[dict[str, Any]], fmt: ExportFormat, name: str) -> Response:
        if fmt == "geojson":
            body = msgspec.json.encode(feature_collection(features))
        elif fmt == "csv":
            body = to_csv(features).encode()
        else:
            body = to_kml(features, name=name).encode()
        ext = {"geojson": "geojson", "csv": "csv", "kml": "kml"}[fmt]
        return Response(
            body,
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="parkwatch-{name}.{ext}"'},
        )

    @v1.get("/export/cells", tags=["exports"], summary="Coverage cells as GeoJSON, CSV or KML.")
    def export_cells(
        p: Planner,
        format: ExportFormat = "geojson",
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        return _export(_cells(sc, res(resolution)), format, "cells")

    @v1.get("/export/dead-zones", tags=["exports"], summary="Dead zones as GeoJSON, CSV or KML.")
    def export_dead_zones(
        p: Planner,
        format: ExportFormat = "geojson",
        park: ParkQ = None,
        operator: OperatorQ = None,
        tech: TechQ = None,
        start: FromQ = None,
        to: ToQ = None,
        bbox: BboxQ = None,
        resolution: ResolutionQ = None,
        max_class: SignalClass | None = None,
    ) -> Response:
        sc = scope(p, park, start, to, operator=operator, tech=tech, box=bbox)
        return _export(
            _zones(sc, res(resolution), max_class or cov.dead_zone_max_class), format, "dead-zones"
        )

    app.include_router(v1)
    if dashboard is not None:
        app.mount("/dashboard", dashboard)
    return app


__all__ = ["create_app"]
