"""``parkwatch import``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = (
    "Import a survey file (CSV, JSON Lines, GeoJSON points) through the ingester's validation into the store."
)

EPILOG = """\
mappings: gnettrack (G-NetTrack-style drive-test log), generic (lat, lon, time, operator, tech,
rsrp, rsrq, sinr), or a TOML mapping file (see docs/import.md). The store is the one of the
ingester settings (--config, PARKWATCH_* variables). Re-importing a file overwrites the same points
and never duplicates them. A DuckDB file can have one writer: stop the ingester that holds it first.

examples:
  parkwatch import drive.csv --park hp-new --mapping gnettrack --timezone Asia/Ho_Chi_Minh --dry-run
  parkwatch import drive.csv --park hp-new --mapping gnettrack --config ingest.toml
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", help="the survey file")
    parser.add_argument("--park", required=True, help="park id the readings belong to")
    parser.add_argument(
        "--gateway",
        default="import",
        help="gateway id to file the readings under (default: import); part of each point's identity",
    )
    parser.add_argument("--device", default="", help="device id of every reading (default: from the mapping)")
    parser.add_argument(
        "--format", choices=("csv", "jsonl", "geojson"), help="file format (default: from the file name)"
    )
    parser.add_argument(
        "--mapping", default="generic", help="gnettrack, generic (default) or a TOML mapping file"
    )
    parser.add_argument("--timezone", default="", help="IANA zone of times without an offset (default: UTC)")
    parser.add_argument("--config", metavar="FILE", help="ingester TOML settings (sink, age limits, aliases)")
    parser.add_argument("--dry-run", action="store_true", help="validate and report; store nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_run)


def _fail(message: str) -> int:
    print(f"parkwatch import: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from contract.errors import ContractError
    from contract.ids import check_id
    from ingest.import_report import print_report
    from settings import ConfigError, load_settings
    from settings.ingest import IngestSettings
    from surveys.formats import SurveyFormatError, guess_format, read_rows
    from surveys.mappings import MappingError, load_mapping

    try:
        check_id(args.park, "park")
        check_id(args.gateway, "gateway")
        if args.device:
            check_id(args.device, "device")
    except ContractError as exc:
        return _fail(str(exc))
    try:
        settings = load_settings(IngestSettings, args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror}")
    try:
        mapping = load_mapping(args.mapping)
        rows = list(read_rows(data, args.format or guess_format(path.name), delimiter=mapping.delimiter))
    except (MappingError, SurveyFormatError) as exc:
        return _fail(str(exc))
    if not rows:
        return _fail(f"{path} holds no rows")
    try:
        report = asyncio.run(_import(settings, rows, mapping, args))
    except _ImportFailed as exc:
        return _fail(str(exc))
    print_report(report, dry_run=args.dry_run, as_json=args.json, source=str(path), mapping=mapping.name)
    return 0


class _ImportFailed(Exception):
    pass


async def _import(settings: Any, rows: list[Any], mapping: Any, args: argparse.Namespace) -> Any:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ingest.errors import ConfigError, RetryableError
    from ingest.imports import SurveyImport
    from ingest.service import Ingester
    from settings.ingest import DuckdbSinkSettings
    from surveys.convert import convert_rows
    from surveys.mappings import MappingError

    ing = Ingester(settings)
    await asyncio.to_thread(ing.refresh_registry)  # known parks and gateway positions
    job = SurveyImport(ing, park=args.park, gateway=args.gateway, dry_run=args.dry_run)
    if not args.dry_run:
        try:
            await ing.sink.start()
        except ConfigError as exc:
            if isinstance(settings.sink, DuckdbSinkSettings):
                raise _ImportFailed(
                    f"the DuckDB file {settings.sink.path} is in use ({exc}). DuckDB allows one writer: "
                    "stop the ingester that holds it (readings sent meanwhile wait in the broker and "
                    "the gateways' buffers), run the import, start the ingester again"
                ) from exc
            raise _ImportFailed(str(exc)) from exc
        except RetryableError as exc:
            raise _ImportFailed(
                f"the store is unavailable: {exc}; start it and run the import again"
            ) from exc
    try:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            disable=args.json,
        ) as bar:
            task = bar.add_task("rows", total=len(rows))
            items = convert_rows(rows, mapping, device=args.device, timezone=args.timezone)
            return await job.feed(items, progress=lambda done: bar.update(task, completed=done))
    except MappingError as exc:
        raise _ImportFailed(str(exc)) from exc
    except RetryableError as exc:
        raise _ImportFailed(
            f"the store became unavailable after {job.report.stored} readings: {exc}; run the import "
            "again when it is back (points already stored are overwritten, not duplicated)"
        ) from exc
    finally:
        if not args.dry_run:
            await ing.sink.aclose()
