"""Survey uploads: ``POST /api/v1/imports`` and the jobs they become.

The API does not write readings (``ingest`` writes, ``api`` reads): an uploaded file is checked
(park known to the registry and visible to the key, mapping, format, readable rows) and queued in
the registry file (:mod:`storage.import_queue`); a running ingester claims it and imports it
through its own validation and sink, exactly as ``parkwatch import`` would, and records the
report, which ``GET /api/v1/imports/{id}`` shows. See docs/import.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Context, Page100, Planner, Problem
from api.errors import BadRequest, NotFound, TooLarge
from contract.ids import ID, syntax
from storage.import_queue import ImportQueue
from storage.places import PlaceError, Places, check_timezone
from surveys.formats import Format, SurveyFormatError, guess_format, read_rows
from surveys.mappings import BUILTIN_MAPPINGS, MappingError, load_mapping

JOB_ID = syntax(r"imp-[0-9a-f]{12}", max_length=16, rule="imp- and 12 hexadecimal digits")
FILE_NAME = syntax(
    r"[A-Za-z0-9][A-Za-z0-9 ._()\-]{0,199}",
    max_length=200,
    rule="1-200 characters from A-Z a-z 0-9 space . _ ( ) -, starting with a letter or digit",
)

MappingQ = Annotated[
    str, Query(max_length=64, description=f"Column mapping: one of {', '.join(BUILTIN_MAPPINGS)}.")
]
IdQuery = Annotated[str, Query(pattern=ID.regex, max_length=ID.max_length)]
FileName = Annotated[
    str,
    Query(
        max_length=FILE_NAME.max_length,
        pattern=FILE_NAME.regex,
        description="The file's name (its extension picks the format when `format` is not given).",
    ),
]


def _count_rows(data: bytes, fmt: Format, mapping: str) -> int:
    spec = load_mapping(mapping)
    count = 0
    for _ in read_rows(data, fmt, delimiter=spec.delimiter):
        count += 1
    return count


def build(ctx: Context) -> APIRouter:
    """The import routes over the registry file of ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    queue = ImportQueue(ctx.registry.path)
    places = Places(ctx.registry.path)
    max_bytes = int(ctx.settings.api.import_max_mb * 1024 * 1024)
    mappings = tuple(BUILTIN_MAPPINGS)

    @v1.post(
        "/imports",
        status_code=202,
        tags=["imports"],
        responses={
            404: {"model": Problem, "description": "the park is not stored in the registry"},
            413: {"model": Problem, "description": "the file is larger than [api] import_max_mb"},
        },
        summary="Upload a survey file (CSV, JSON Lines, GeoJSON points); a running ingester imports it.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The file's bytes as they are (e.g. `curl --data-binary @drive.csv`).",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def upload(
        request: Request,
        p: Planner,
        park: IdQuery,
        mapping: MappingQ = "generic",
        filename: FileName = "survey.csv",
        format: Annotated[
            Literal["csv", "jsonl", "geojson"] | None, Query(description="Default: from `filename`.")
        ] = None,
        gateway: Annotated[
            str, Query(pattern=ID.regex, max_length=ID.max_length, description="Gateway id of the readings.")
        ] = "import",
        device: Annotated[
            str | None,
            Query(pattern=ID.regex, max_length=ID.max_length, description="Device id of every row."),
        ] = None,
        timezone: Annotated[
            str, Query(max_length=64, description="IANA zone of times without an offset (default: UTC).")
        ] = "",
        dry_run: Annotated[bool, Query(description="Validate and report; store nothing.")] = False,
    ) -> dict[str, Any]:
        p.scope_parks(park)
        if mapping not in BUILTIN_MAPPINGS:
            raise BadRequest(
                f"mapping {mapping[:40]!r} is not one of {', '.join(mappings)}; for a mapping file of "
                "your own use `parkwatch import FILE --mapping MAPPING.toml` (see docs/import.md)"
            )
        if timezone:
            try:
                check_timezone(timezone)
            except PlaceError as exc:
                raise BadRequest(str(exc)) from exc
        if await run_in_threadpool(places.park, park) is None:
            raise NotFound(
                f"park {park!r} is not stored: create it first (PUT /api/v1/parks/{park} or "
                "`parkwatch park create`), so its readings are not refused as an unknown park"
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the file is larger than {max_bytes} bytes ([api] import_max_mb); split it")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the file is larger than {max_bytes} bytes ([api] import_max_mb); split it")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise BadRequest("the request body is empty: send the file's bytes as the body")
        fmt = format or guess_format(filename)
        try:
            rows = await run_in_threadpool(_count_rows, data, fmt, mapping)
        except (SurveyFormatError, MappingError) as exc:
            raise BadRequest(f"{filename}: {exc}") from exc
        if not rows:
            raise BadRequest(f"{filename} holds no rows (format {fmt})")
        job = await run_in_threadpool(
            lambda: queue.submit(
                data,
                park=park,
                gateway=gateway,
                device=device or "",
                mapping=mapping,
                fmt=fmt,
                timezone=timezone,
                filename=filename,
                rows=rows,
                dry_run=dry_run,
                submitted_by=p.name,
            )
        )
        return {**job.to_dict(), "links": {"self": f"/api/v1/imports/{job.id}"}}

    @v1.get(
        "/imports", tags=["imports"], summary="Uploaded survey files, newest first (those this key may see)."
    )
    def list_imports(
        p: Planner,
        paging: Page100,
        park: Annotated[str | None, Query(pattern=ID.regex, max_length=ID.max_length)] = None,
    ) -> dict[str, Any]:
        parks = p.scope_parks(park)
        jobs = queue.jobs(parks, limit=paging.offset + paging.limit + 1)
        return paging.page([j.to_dict() for j in jobs])

    @v1.get(
        "/imports/{job_id}",
        responses={404: {"model": Problem, "description": "no such import (for this key)"}},
        tags=["imports"],
        summary="One upload: its status and, once done, its report.",
    )
    def get_import(
        p: Planner,
        job_id: Annotated[
            str, Path(pattern=JOB_ID.regex, max_length=JOB_ID.max_length, description="Import job id.")
        ],
    ) -> dict[str, Any]:
        job = queue.get(job_id)
        if job is None or not p.may_see(job.park):
            raise NotFound(f"no import {job_id!r} (for this key): GET /api/v1/imports lists them")
        return job.to_dict()

    return v1
