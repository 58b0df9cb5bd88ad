"""Reports: ``/api/v1/reports/coverage``, the coverage report of one park and period (HTML or PDF)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import Ctx, Viewer, parse_selection
from api.errors import ApiError
from api.params import FromQ, ToQ
from api.reports.build import ReportFormat, coverage_report
from api.reports.i18n import Lang
from api.reports.pdf import PdfUnavailable
from contract.ids import ID
from storage.places import Places

router = APIRouter(prefix="/api/v1")

ReportParkQ = Annotated[
    str, Query(pattern=ID.regex, max_length=ID.max_length, description=f"Park id: {ID.rule}.")
]


class ReportUnavailable(ApiError):
    status = 501
    code = "pdf_unavailable"


PROBLEM: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
REPORT_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: a self-contained HTML page that prints well, or a PDF (A4).",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    404: {"description": "unknown park: neither configured nor with any cellular reading"},
    501: {
        "description": "PDF asked for but Chromium or Playwright is missing (the message says what to install)"
    },
}


def park_name(ctx: Ctx, park: str) -> str:
    """The park's display name: the registry's, else the config's, else its id."""
    places = Places(ctx.registry.path)
    try:
        stored = places.park(park)
    finally:
        places.close()
    if stored is not None and stored.name:
        return stored.name
    return next((p.name for p in ctx.settings.parks if p.id == park and p.name), park)


@router.get(
    "/reports/coverage",
    tags=["reports"],
    response_class=Response,
    responses=REPORT_OK,
    summary="Coverage report of one park and period: coverage by operator and technology, dead zones "
    "with their status and maps, survey gaps, broadband against the targets, change since the previous period.",
)
def coverage_report_route(
    p: Viewer,
    ctx: Ctx,
    park: ReportParkQ,
    start: FromQ = None,
    to: ToQ = None,
    lang: Lang = "en",
    format: ReportFormat = "html",
) -> Response:
    sel = parse_selection(ctx, p, park, start, to, known_park=True)
    try:
        body = coverage_report(
            ctx.services,
            park=park,
            park_name=park_name(ctx, park),
            scope=sel.scope,
            resolution=sel.resolution,
            max_class=ctx.settings.coverage.dead_zone_max_class,
            lang=lang,
            fmt=format,
        )
    except PdfUnavailable as exc:
        raise ReportUnavailable(str(exc)) from exc
    day = sel.scope.start.date().isoformat()
    kind: dict[Literal["html", "pdf"], str] = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
    headers = {"Content-Disposition": f'inline; filename="parkwatch-coverage-{park}-{day}-{lang}.{format}"'}
    return Response(body, media_type=kind[format], headers=headers)
