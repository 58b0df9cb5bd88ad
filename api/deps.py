"""Shared pieces of the routes: request models, access-control dependencies, the route context, and
the one query-parameter dependency of the read routes (:class:`Selection`) with paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Final

import msgspec
from fastapi import Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from api.auth import KeyRecord, KeyRing, Principal, Role
from api.errors import BadRequest, NotFound
from api.params import (
    BboxQ,
    FromQ,
    OffsetQ,
    OperatorQ,
    ParkQ,
    ResolutionQ,
    TechnologyQ,
    TechQ,
    ToQ,
    resolution,
    window,
)
from api.params import bbox as parse_bbox
from api.registry import Registry
from api.services import Services
from contract.ids import ID, KEY_NAME
from settings.api import ApiSettings
from storage.query import Scope

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


class Problem(BaseModel):
    """The body of every error answer."""

    error: dict[str, Any] = Field(
        examples=[{"code": "invalid_parameter", "message": "bbox must be four numbers"}]
    )


class GatewayIn(BaseModel):
    """A gateway to register."""

    park: str = Field(pattern=ID.regex, max_length=ID.max_length, description=f"Park id: {ID.rule}.")
    gw: str = Field(pattern=ID.regex, max_length=ID.max_length, description=f"Gateway id: {ID.rule}.")
    description: str = Field(default="", max_length=256)


class KeyIn(BaseModel):
    """An API key to create."""

    name: str = Field(
        min_length=1, max_length=KEY_NAME.max_length, pattern=KEY_NAME.regex, description=f"{KEY_NAME.rule}."
    )
    role: Role = "viewer"
    parks: list[str] = Field(default_factory=list, max_length=100)

    def checked_parks(self) -> tuple[str, ...]:
        for p in self.parks:
            if not ID.is_valid(p):
                raise BadRequest(f"invalid park id {p[:64]!r}: use {ID.rule}")
        return tuple(sorted(set(self.parks)))


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or unknown API key"},
    403: {"model": Problem, "description": "role or park not allowed"},
    422: {"model": Problem, "description": "invalid parameter"},
    503: {"model": Problem, "description": "database unavailable"},
}


FEATURE_COLLECTION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
    },
}
"""JSON Schema of the GeoJSON answers (RFC 7946 FeatureCollection, with paging members beside it)."""

GEOJSON_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A GeoJSON FeatureCollection (RFC 7946).",
        "content": {"application/geo+json": {"schema": FEATURE_COLLECTION}},
    },
    # FastAPI files a ``model`` under the route's own media type; errors stay application/json.
    **{
        status: {
            "description": e["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, e in ERRORS.items()
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such gateway (or not visible to this key)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": Problem, "description": "it exists already"}}
BODY_UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the request body could not be read (send JSON)"}
}


class GeoJSONResponse(Response):
    """A GeoJSON body; as a route's ``response_class`` it puts ``application/geo+json`` in the docs."""

    media_type = "application/geo+json"


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def json_response(obj: Any, *, geo: bool = False) -> Response:
    """JSON through msgspec (NaN becomes null); FastAPI's own encoder is ~50x slower on GeoJSON."""
    return Response(
        msgspec.json.encode(obj), media_type="application/geo+json" if geo else "application/json"
    )


def page(items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    chunk = items[offset : offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return {"total": len(items), "limit": limit, "offset": offset, "next_offset": nxt, "items": chunk}


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


Authenticated = Annotated[Principal, Depends(_principal)]
"""The key's principal, whatever its role (the route's own role dependency checks that)."""
Viewer = Annotated[Principal, Depends(_role("viewer"))]
Planner = Annotated[Principal, Depends(_role("planner"))]
Engineer = Annotated[Principal, Depends(_role("engineer"))]
Admin = Annotated[Principal, Depends(_role("admin"))]
GwPath = Annotated[
    str, Path(pattern=ID.regex, max_length=ID.max_length, description=f"Gateway id: {ID.rule}.")
]
KeyNamePath = Annotated[
    str,
    Path(
        pattern=KEY_NAME.regex, max_length=KEY_NAME.max_length, description=f"API key name: {KEY_NAME.rule}."
    ),
]
UserPath = Annotated[
    str,
    Path(pattern=ID.regex, max_length=ID.max_length, description=f"Broker account name: {ID.rule}."),
]
ParkRequired = Annotated[
    str,
    Query(pattern=ID.regex, max_length=ID.max_length, description=f"Park id of the gateway: {ID.rule}."),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the route modules need: settings, the read services, the registry and key bookkeeping."""

    settings: ApiSettings
    services: Services
    registry: Registry
    config_keys: list[KeyRecord]
    invalidate_keys: Callable[[], None]

    def scope(
        self,
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
        """A validated query scope limited to the parks the key may see."""
        cov = self.settings.coverage
        w = window(
            start,
            end,
            default_days=cov.default_window_days,
            max_days=cov.max_window_days,
            now=self.services.coverage.live.clock(),
        )
        return Scope(
            parks=p.scope_parks(park),
            start=w.start,
            end=w.end,
            operator=operator,
            tech=tech,
            bbox=parse_bbox(box),
            gw=gw,
        )

    def res(self, value: int | None) -> int:
        """A validated H3 resolution."""
        cov = self.settings.coverage
        return resolution(
            value, default=cov.default_resolution, coarsest=cov.min_resolution, finest=cov.ingest_resolution
        )


def context(request: Request) -> Context:
    """The application's :class:`Context` (set by :func:`api.app.create_app`)."""
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(context)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What a read route was asked for, parsed and checked once: the scope and the H3 resolution."""

    scope: Scope
    resolution: int

    @property
    def window(self) -> list[str]:
        return [self.scope.start.isoformat(), self.scope.end.isoformat()]

    @property
    def as_of(self) -> dict[str, str]:
        """``{"as_of": end}`` for a live view's answer (its window ends at its refresh time, see
        :mod:`api.live`), else nothing: members of the GeoJSON answers."""
        return {"as_of": self.scope.end.isoformat()} if self.scope.live else {}


def parse_selection(
    ctx: Context,
    p: Principal,
    park: str | None,
    start: Any,
    to: Any,
    *,
    operator: str | None = None,
    tech: str | None = None,
    res: int | None = None,
    known_park: bool = False,
    live: bool = False,
) -> Selection:
    """Check and default the query parameters of a read route once; ``known_park``: 404 for a park
    that is neither configured nor measured; ``live``: a window without ``to`` is a live view's,
    answered as of its latest refresh (:mod:`api.live`)."""
    sc = ctx.scope(p, park, start, to, operator=operator, tech=tech)
    resolution = ctx.res(res)
    if known_park and park is not None and not ctx.services.coverage.park_known(park):
        raise NotFound(
            f"unknown park {park!r}: it is not in the configuration and has no cellular "
            "readings; GET /api/v1/coverage/operators lists the parks with data"
        )
    views = ctx.services.coverage.live
    if live and to is None and views.enabled:
        sc = views.pin(sc, resolution)
    return Selection(scope=sc, resolution=resolution)


def _coverage(
    ctx: Ctx,
    p: Authenticated,
    park: ParkQ = None,
    operator: OperatorQ = None,
    tech: TechQ = None,
    start: FromQ = None,
    to: ToQ = None,
    resolution: ResolutionQ = None,
) -> Selection:
    return parse_selection(
        ctx, p, park, start, to, operator=operator, tech=tech, res=resolution, known_park=True, live=True
    )


def _coverage_area(sel: Annotated[Selection, Depends(_coverage)], bbox: BboxQ = None) -> Selection:
    return replace(sel, scope=replace(sel.scope, bbox=parse_bbox(bbox)))


def _window(ctx: Ctx, p: Authenticated, park: ParkQ = None, start: FromQ = None, to: ToQ = None) -> Selection:
    return parse_selection(ctx, p, park, start, to)


# Each alias is the one parser above with the parameters its routes take: the coverage map reads
# an area (bbox), survey gaps and the summary a whole park, operations a park and a window.
CoverageArea = Annotated[Selection, Depends(_coverage_area)]
"""park, operator, tech, from, to, bbox, resolution; 404 for an unknown park."""
CoverageSelection = Annotated[Selection, Depends(_coverage)]
"""park, operator, tech, from, to, resolution; 404 for an unknown park."""
WindowSelection = Annotated[Selection, Depends(_window)]
"""park, from, to."""

LIMIT_CAP: Final = 100_000
"""The static bound of ``limit``; the configured ``max_page_size`` below it is checked per request
and written into the OpenAPI document by :func:`document_limits`."""


@dataclass(frozen=True, slots=True)
class Paging:
    """One page: ``limit`` items after ``offset``."""

    limit: int
    offset: int

    def page(self, items: Sequence[Any]) -> dict[str, Any]:
        return page(items, self.limit, self.offset)


def paging(default: int) -> Callable[..., Paging]:
    """The ``limit``/``offset`` dependency with ``default`` items per page (cut to ``max_page_size``)."""

    def dependency(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=LIMIT_CAP, description="Page size.")] = default,
        offset: OffsetQ = 0,
    ) -> Paging:
        max_page = context(request).settings.api.max_page_size
        if "limit" not in request.query_params:
            return Paging(min(default, max_page), offset)
        if limit > max_page:
            raise RequestValidationError(
                [
                    {
                        "type": "less_than_equal",
                        "loc": ("query", "limit"),
                        "msg": f"Input should be less than or equal to {max_page}",
                        "input": limit,
                        "ctx": {"le": max_page},
                    }
                ]
            )
        return Paging(limit, offset)

    return dependency


Page1000 = Annotated[Paging, Depends(paging(1000))]
Page100 = Annotated[Paging, Depends(paging(100))]


def document_limits(schema: dict[str, Any], max_page_size: int) -> None:
    """Write the configured page-size bound into every ``limit`` parameter of an OpenAPI document."""
    for item in schema.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                if param.get("name") == "limit" and param.get("in") == "query":
                    sch = param["schema"]
                    sch["maximum"] = max_page_size
                    sch["default"] = min(int(sch.get("default", max_page_size)), max_page_size)
                    param["description"] = (
                        f"Page size, at most {max_page_size} (the API's `max_page_size` setting)."
                    )


def _network_selection(
    ctx: Ctx,
    p: Authenticated,
    park: ParkQ = None,
    operator: OperatorQ = None,
    tech: TechQ = None,
    technology: TechnologyQ = None,
    start: FromQ = None,
    to: ToQ = None,
    resolution: ResolutionQ = None,
) -> Selection:
    if tech is not None and technology is not None and tech != technology:
        raise BadRequest(f"tech={tech} and technology={technology} disagree: give one of them")
    return parse_selection(
        ctx, p, park, start, to, operator=operator, tech=tech or technology, res=resolution, known_park=True
    )


NetworkSelection = Annotated[Selection, Depends(_network_selection)]
"""park, operator, tech (or technology), from, to, resolution; 404 for an unknown park."""
