"""``parkwatch import``: survey readings through the ingester's own validation, enrichment and sink.

Readings converted from a survey file (:mod:`surveys`) are packed into contract batches of the
import's park and gateway and handed to :meth:`Ingester.handle` exactly as an MQTT message would be
(``imported=True`` selects the import age limit and flags every part as a possible replay, so a
store that deduplicates at a cost does so). The resulting write batches go to the configured sink
with the same poison isolation. There is no second validation path: what MQTT would refuse, an
import refuses, with the same dead-letter reasons.

Why not publish the batches to the broker instead: an import is an interactive, one-off job that
wants its answer (rows stored, refused by reason) when it ends, and a broker path would need the
running ingester's acks to be observable from here. The price is DuckDB's single writer: a DuckDB
file held by a running ingester cannot be opened, and the import says so (see docs/import.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from contract.limits import MAX_PAYLOAD_BYTES
from contract.readings import Cellular, kind_of
from contract.topics import topic_for
from ingest.model import WriteBatch
from ingest.mqtt import Message
from ingest.service import Ingester
from surveys.convert import Converted, RowProblem

READINGS_PER_BATCH = 400
"""Readings per contract batch: well under the 1000-reading and 256 KiB limits for survey rows."""

_enc = msgspec.json.Encoder()


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, with ``dry_run``, would do).

    Attributes:
        rows: rows read from the file.
        stored: readings written (a re-import overwrites the same points, never duplicates).
        accepted: readings that passed validation (equal to ``stored`` unless a dry run).
        refused: rows refused as a whole, by reason key (``out_of_range:lat``, ``malformed:ts``).
        dropped: fields dropped from kept readings, by reason key (``out_of_range:sinr_db``).
        examples: one full reason per key.
        by_series: accepted readings per ``kind operator tech``.
        first_ms, last_ms: the time span of the accepted readings.
        south, west, north, east: the bounding box of their positions.
        cells: distinct H3 cells they fall in.
        sample: the first few accepted readings as stored (dry run output).
        retention_days: the store's retention (0 = keeps everything).
        beyond_retention: accepted readings older than that retention: the store deletes them
            at its next retention run.
    """

    rows: int = 0
    stored: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    by_series: Counter[str] = field(default_factory=Counter)
    first_ms: int | None = None
    last_ms: int | None = None
    south: float | None = None
    west: float | None = None
    north: float | None = None
    east: float | None = None
    cells: set[int] = field(default_factory=set)
    sample: list[dict[str, Any]] = field(default_factory=list)
    retention_days: int = 0
    beyond_retention: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly data (the API's answer)."""
        bbox = None if self.south is None else [self.west, self.south, self.east, self.north]
        return {
            "rows": self.rows,
            "stored": self.stored,
            "accepted": self.accepted,
            "refused": dict(self.refused.most_common()),
            "dropped_fields": dict(self.dropped.most_common()),
            "examples": self.examples,
            "series": dict(self.by_series.most_common()),
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "bbox": bbox,
            "h3_cells": len(self.cells),
            "retention_days": self.retention_days,
            "beyond_retention": self.beyond_retention,
        }


def _note_reading(report: ImportReport, r: Any, cell: int, cutoff_ms: int) -> None:
    report.accepted += 1
    if r.ts < cutoff_ms:
        report.beyond_retention += 1
    report.first_ms = r.ts if report.first_ms is None else min(report.first_ms, r.ts)
    report.last_ms = r.ts if report.last_ms is None else max(report.last_ms, r.ts)
    series = kind_of(r) + (f" {r.operator} {r.tech}" if isinstance(r, Cellular) else "")
    report.by_series[series] += 1
    if r.lat is not None and r.lon is not None:
        report.south = r.lat if report.south is None else min(report.south, r.lat)
        report.north = r.lat if report.north is None else max(report.north, r.lat)
        report.west = r.lon if report.west is None else min(report.west, r.lon)
        report.east = r.lon if report.east is None else max(report.east, r.lon)
    if cell:
        report.cells.add(cell)
    if len(report.sample) < 5:
        report.sample.append(msgspec.to_builtins(r))


class SurveyImport:
    """Feeds converted survey rows through an :class:`Ingester` (whose sink is started by the caller).

    Args:
        ingester: the ingester whose validation, enrichment and sink are used.
        park, gateway: where the readings are filed (the park must be a valid id).
        dry_run: validate and report, write nothing.
    """

    def __init__(self, ingester: Ingester, *, park: str, gateway: str, dry_run: bool = False) -> None:
        self.ing = ingester
        self.topic = topic_for(park, gateway, "telemetry", root=ingester.settings.broker.topic_root)
        self.gateway = gateway
        self.dry_run = dry_run
        retention = getattr(ingester.settings.sink, "retention_days", 0)
        self.report = ImportReport(retention_days=retention)
        self._cutoff_ms = int(time.time() * 1000) - retention * 86_400_000 if retention else -1
        self._seq = int(time.time())
        self._pending = WriteBatch()

    def _message(self, readings: list[dict[str, Any]]) -> Message:
        self._seq += 1
        payload = _enc.encode({"v": 1, "gw": self.gateway, "seq": self._seq, "readings": readings})
        return Message(
            topic=self.topic,
            payload=payload,
            received_ms=int(time.time() * 1000),
            content_type="application/json",
            mid=0,
            qos=1,
            generation=0,
        )

    async def _handle(self, readings: list[dict[str, Any]]) -> None:
        msg = self._message(readings)
        if len(msg.payload) > MAX_PAYLOAD_BYTES and len(readings) > 1:
            half = len(readings) // 2
            await self._handle(readings[:half])
            await self._handle(readings[half:])
            return
        keys, dropped = self.ing.metrics.dead_letter_reasons, self.ing.dropped_fields
        keys_before, dropped_before = Counter(keys), Counter(dropped)
        refused_before = self.ing.metrics.dead_letters["reading"]
        out = WriteBatch()
        self.ing.handle(msg, out, imported=True)
        new_dropped = dropped - dropped_before
        new_refused = (keys - keys_before) - new_dropped
        if (
            not out.parts
            and self.ing.metrics.dead_letters["reading"] == refused_before
            and len(new_refused) == 1
        ):
            # The message was refused as a whole (an unknown park): count its readings.
            (key,) = new_refused
            new_refused[key] = len(readings)
        self.report.dropped.update(new_dropped)
        self.report.refused.update(new_refused)
        for key in new_dropped + new_refused:
            if key in self.report.examples:
                continue
            code, _, name = key.partition(":")
            for dead in out.dead_letters:
                if dead.reason.startswith(f"{code}: ") and name in dead.reason:
                    self.report.examples[key] = dead.reason
                    break
        for part in out.parts:
            for r, cell in zip(part.readings, part.h3, strict=True):
                _note_reading(self.report, r, cell, self._cutoff_ms)
        if self.dry_run:
            return
        self._pending.parts.extend(out.parts)
        self._pending.dead_letters.extend(out.dead_letters)
        if self._pending.reading_count() >= self.ing.settings.ingest.batch_readings:
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending."""
        if self._pending.is_empty():
            return
        batch, self._pending = self._pending, WriteBatch()
        result = await self.ing.write_direct(batch)
        self.report.stored += result.readings

    async def feed(
        self,
        items: Iterable[Converted | RowProblem],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import every item; ``progress`` is called with the number of rows done so far."""
        chunk: list[dict[str, Any]] = []
        for item in items:
            self.report.rows += 1
            if isinstance(item, RowProblem):
                self.report.refused[item.key] += 1
                self.report.examples.setdefault(item.key, item.detail)
            else:
                chunk.append(item.reading)
                if len(chunk) >= READINGS_PER_BATCH:
                    await self._handle(chunk)
                    chunk = []
            if self.report.rows % 100 == 0:
                if progress is not None:
                    progress(self.report.rows)
                await asyncio.sleep(0)  # a running ingester's live batches go on meanwhile
        if chunk:
            await self._handle(chunk)
        await self.flush()
        if progress is not None:
            progress(self.report.rows)
        return self.report
