"""The import report on a terminal (rich) or as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from ingest.imports import ImportReport


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_report(
    report: ImportReport,
    *,
    dry_run: bool,
    as_json: bool,
    source: str,
    mapping: str,
    console: Console | None = None,
) -> None:
    """Print what an import did (or would do)."""
    out = console or Console()
    if as_json:
        out.print_json(
            json.dumps({"source": source, "mapping": mapping, "dry_run": dry_run, **report.to_dict()})
        )
        return
    verb = "to store" if dry_run else "stored"
    out.print(
        f"[bold]{source}[/] (mapping {mapping}): {report.rows} rows read, {report.accepted} readings valid"
    )
    if dry_run:
        out.print(f"dry run: nothing written; stored would be {report.accepted} readings")
    else:
        out.print(f"stored: {report.stored} readings (a re-import overwrites the same points)")
    out.print(f"time span: {_when(report.first_ms)} .. {_when(report.last_ms)}")
    if report.south is not None:
        out.print(
            f"area: lat {report.south:.5f} .. {report.north:.5f}, lon {report.west:.5f} .. {report.east:.5f}, "
            f"{len(report.cells)} H3 cells"
        )
    if report.beyond_retention:
        out.print(
            f"[yellow]warning:[/] {report.beyond_retention} readings are older than the store's retention "
            f"({report.retention_days} days): its next retention run deletes them. Raise [sink] "
            "retention_days in the ingester settings (0 keeps everything) and import again."
        )
    if report.by_series:
        table = Table("series", "readings", title=f"readings {verb}")
        for series, n in report.by_series.most_common():
            table.add_row(series, str(n))
        out.print(table)
    for title, counts in (
        ("rows refused", report.refused),
        ("fields dropped (reading kept)", report.dropped),
    ):
        if not counts:
            continue
        table = Table("reason", "count", "example", title=f"{title}: {sum(counts.values())}")
        for key, n in counts.most_common():
            table.add_row(key, str(n), report.examples.get(key, ""))
        out.print(table)
    if dry_run and report.sample:
        out.print("first readings as they would be stored:")
        for reading in report.sample:
            out.print(json.dumps(reading), highlight=False, soft_wrap=True)
