"""``parkwatch report coverage``: the coverage report of one park and period, as HTML or PDF.

Standard library imports only at module level (see :mod:`parkwatch.cli`). Reads the store named by
the API settings (``--config``), as ``GET /api/v1/reports/coverage`` does.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELP = "Write reports: the coverage report of a park and period (HTML or PDF, English or Vietnamese)."


def _when(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time (2026-11-01)") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    p = sub.add_parser(
        "coverage",
        help="coverage by operator and technology, dead zones with status and maps, survey gaps, "
        "broadband against targets, change since the previous period",
    )
    p.add_argument("--config", metavar="FILE", help="API settings (TOML): the store and the parks")
    p.add_argument("--park", required=True, help="park id")
    p.add_argument("--from", dest="start", type=_when, help="period start (ISO 8601, UTC unless given)")
    p.add_argument("--to", dest="end", type=_when, help="period end, exclusive (default: now)")
    p.add_argument("--lang", choices=("en", "vi"), default="en", help="English or Vietnamese (default en)")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="report.html or report.pdf (the suffix decides)"
    )
    p.set_defaults(func=_coverage)


def _fail(message: str) -> int:
    print(f"parkwatch report: {message}", file=sys.stderr)
    return 2


def _coverage(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("html", "pdf"):
        return _fail(f"--out {args.out}: name the file .html or .pdf")
    from api.cli import build_backend
    from api.errors import ApiError
    from api.registry import Registry
    from api.reports.build import coverage_report
    from api.reports.pdf import PdfUnavailable
    from api.services import Services
    from settings.api import ApiSettings
    from settings.errors import ConfigError
    from settings.loader import load_settings
    from storage.places import Places
    from storage.query import QueryError, Scope

    try:
        settings: Any = load_settings(ApiSettings, args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    from api.params import window

    cov = settings.coverage
    try:
        w = window(args.start, args.end, default_days=cov.default_window_days, max_days=cov.max_window_days)
    except ApiError as exc:
        return _fail(exc.message.replace("'from'", "--from").replace("'to'", "--to"))
    path = settings.api.registry_path
    places = Places(path)
    try:
        stored = {p.id: p for p in places.parks()}
    finally:
        places.close()
    registry = Registry(path)
    backend = build_backend(settings)
    try:
        services = Services.build(
            settings,
            backend,
            registry_parks=lambda: {k: v.boundary for k, v in stored.items()},
            sites_path=path,
        )
        if not services.coverage.park_known(args.park):
            return _fail(
                f"unknown park {args.park!r}: not in the configuration or the registry and without "
                "cellular readings (`parkwatch park list` shows the stored parks)"
            )
        record = stored.get(args.park)
        name = (
            record.name
            if record is not None and record.name
            else next((p.name for p in settings.parks if p.id == args.park and p.name), args.park)
        )
        body = coverage_report(
            services,
            park=args.park,
            park_name=name,
            scope=Scope(parks=(args.park,), start=w.start, end=w.end),
            resolution=cov.default_resolution,
            max_class=cov.dead_zone_max_class,
            lang=args.lang,
            fmt=fmt,  # type: ignore[arg-type]
        )
    except PdfUnavailable as exc:
        return _fail(str(exc))
    except QueryError as exc:
        return _fail(f"the store did not answer: {exc}; check [backend] in {args.config or 'the settings'}")
    finally:
        backend.close()
        registry.close()
    out.write_bytes(body)
    print(f"wrote {out} ({len(body)} bytes; {w.start.isoformat()} – {w.end.isoformat()}, {args.lang})")
    return 0
