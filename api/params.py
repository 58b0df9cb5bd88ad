"""Query parameters shared by the read endpoints, validated before any query is built.

Everything a client sends is checked against a pattern, range or enum here (FastAPI answers 422
with the reason); cross-field rules (window order and length, bbox order, resolution bounds)
raise :class:`api.errors.BadRequest`, also 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import Query

from api.errors import BadRequest
from contract.ids import ID, NAME, full_match
from contract.readings import Technology
from settings.api import DeadZoneMaxClass as DeadZoneMaxClass
from settings.api import SignalClass as SignalClass

_NUMBER: Final = r"-?[0-9]{1,3}(?:\.[0-9]{1,10})?"
BBOX_REGEX: Final = re.compile(full_match(rf"{_NUMBER}(?:,{_NUMBER}){{3}}"))
"""Four decimal numbers; given compiled, so that pydantic-core checks it with Python ``re``."""
MIN_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)


ParkQ = Annotated[
    str | None,
    Query(
        pattern=ID.regex,
        max_length=ID.max_length,
        description=f"Park id ({ID.rule}); default: every park the key may see.",
    ),
]
OperatorQ = Annotated[
    str | None,
    Query(
        pattern=NAME.regex,
        max_length=NAME.max_length,
        description=(
            f"Mobile operator name ({NAME.rule}), in any letter case (`viettel` finds `Viettel`); "
            "`/api/v1/coverage/operators` lists them."
        ),
    ),
]
TechQ = Annotated[Technology | None, Query(description="Radio technology.")]
TechnologyQ = Annotated[
    Technology | None,
    Query(description="Radio technology (the same as `tech`, as the coverage layers name it)."),
]
FromQ = Annotated[
    datetime | None,
    Query(
        alias="from",
        description="Window start (ISO 8601; UTC when no offset). Default: `to` minus the default window.",
    ),
]
ToQ = Annotated[datetime | None, Query(description="Window end, exclusive (ISO 8601). Default: now.")]
BboxQ = Annotated[
    str | None,
    Query(
        pattern=BBOX_REGEX, max_length=80, description="`min_lon,min_lat,max_lon,max_lat` (WGS84 degrees)."
    ),
]
ResolutionQ = Annotated[int | None, Query(ge=0, le=15, description="H3 resolution; default from the config.")]
OffsetQ = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")]
GwQ = Annotated[
    str | None, Query(pattern=ID.regex, max_length=ID.max_length, description=f"Gateway id ({ID.rule}).")
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    start: datetime
    end: datetime


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def window(
    start: datetime | None,
    end: datetime | None,
    *,
    default_days: int,
    max_days: int,
    now: datetime | None = None,
) -> Window:
    """Validate and default a time window (UTC, ``[start, end)``; ``end`` defaults to ``now``)."""
    try:
        e = _utc(end) if end is not None else (now or datetime.now(UTC))
        s = _utc(start) if start is not None else e - timedelta(days=default_days)
    except (OverflowError, ValueError) as exc:
        raise BadRequest(f"invalid time window: {exc}") from exc
    for name, t in (("from", s), ("to", e)):
        if not MIN_TIME <= t <= MAX_TIME:
            raise BadRequest(f"'{name}' must lie between 2000-01-01 and 2100-01-01")
    if s >= e:
        raise BadRequest("'from' must be before 'to'")
    if e - s > timedelta(days=max_days):
        raise BadRequest(f"the time window may span at most {max_days} days")
    return Window(start=s, end=e)


def bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """Parse and check ``min_lon,min_lat,max_lon,max_lat``."""
    if value is None:
        return None
    try:
        a, b, c, d = (float(x) for x in value.split(","))
    except ValueError as exc:
        raise BadRequest("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat") from exc
    if not (-180 <= a < c <= 180 and -90 <= b < d <= 90):
        raise BadRequest(
            "bbox must satisfy -180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90"
        )
    return (a, b, c, d)


def resolution(value: int | None, *, default: int, coarsest: int, finest: int) -> int:
    """Check an H3 resolution against the configured bounds."""
    r = default if value is None else value
    if not coarsest <= r <= finest:
        raise BadRequest(f"resolution must be between {coarsest} and {finest} (the ingest resolution)")
    return r


def limit_query(default: int, *, max_page_size: int) -> Any:
    """The ``limit`` query parameter, bounded by the configured page size.

    The bound written into the OpenAPI document is the one enforced (a larger ``limit`` is a 422).
    Use it as a parameter's default, ``limit: int = limit_1000`` with
    ``limit_1000 = limit_query(1000, max_page_size=...)`` built once per router (the setting is
    only known at run time, so an ``Annotated`` alias at module level cannot carry it). The
    default is cut to the bound: FastAPI does not check defaults.
    """
    return Query(
        min(default, max_page_size),
        ge=1,
        le=max_page_size,
        description=f"Page size, at most {max_page_size} (the API's `max_page_size` setting).",
    )
