"""``GET /api/v1/dead-letters``: what the ingester refused, and why, page by page."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Context, Engineer
from api.errors import BadRequest
from api.params import FromQ, OffsetQ, ParkQ, ToQ, limit_query
from contract.ids import ID
from storage.dead_letters import REASON_PART, DeadLetterFilter

CodeQ = Annotated[
    str | None,
    Query(pattern=REASON_PART.pattern, max_length=40, description="Reason code, e.g. `out_of_range`."),
]
FieldQ = Annotated[
    str | None,
    Query(pattern=REASON_PART.pattern, max_length=40, description="With `code`: the field, e.g. `sinr_db`."),
]
GwQ = Annotated[str | None, Query(pattern=ID.regex, max_length=ID.max_length, description="Gateway id.")]


def build(ctx: Context) -> APIRouter:
    """The dead-letter route over ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    limit_100 = limit_query(100, max_page_size=ctx.settings.api.max_page_size)

    @v1.get(
        "/dead-letters",
        tags=["operations"],
        summary="Dead letters, newest first: reason (code: detail), park, gateway, topic, raw (2 KiB).",
    )
    def dead_letters(
        p: Engineer,
        park: ParkQ = None,
        gw: GwQ = None,
        code: CodeQ = None,
        field: FieldQ = None,
        start: FromQ = None,
        to: ToQ = None,
        limit: int = limit_100,
        offset: OffsetQ = 0,
    ) -> dict[str, Any]:
        sc = ctx.scope(p, park, start, to, gw=gw)
        try:
            flt = DeadLetterFilter(code=code, field=field, limit=limit + 1, offset=offset)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        rows = ctx.services.backend.dead_letters(sc, flt)
        items = [r.to_dict() for r in rows[:limit]]
        return {
            "window": [sc.start.isoformat(), sc.end.isoformat()],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
            "codes": dict(Counter(i["code"] or "other" for i in items).most_common()),
            "items": items,
        }

    return v1
