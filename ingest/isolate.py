"""Poison isolation: narrow a write batch that the sink refuses for its content down to the rows
at fault, store everything else, and turn the refused rows into dead letters.

A sink raises :class:`ingest.errors.PermanentError` when the *data* cannot be stored (a value
line protocol, Arrow or DuckDB cannot carry), having stored nothing of the batch. The batch is
then split into its rows (each reading, status, dead letter and ledger snapshot) and bisected:
each half is written again; a half that is refused is split further, down to single rows. With
``k`` bad rows among ``n`` that costs about ``2 k log2(n)`` writes, and every row that can be
stored is stored. An outage (:class:`ingest.errors.RetryableError`) during the search ends it:
the caller spools the whole batch, and rewriting the halves already stored is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from ingest.errors import PermanentError
from ingest.model import DeadLetter, Part, WriteBatch, WriteResult
from ingest.points import truncate_raw
from ingest.sinks.base import Sink

_json = msgspec.json.Encoder()

RowKind = Literal["reading", "status", "dead_letter", "ledger"]


@dataclass(frozen=True, slots=True)
class _Row:
    kind: RowKind
    index: int
    """Index into the batch's list of that kind (readings: into the part)."""
    part: int = -1


@dataclass(slots=True)
class Isolated:
    """What a write with poison isolation did.

    Attributes:
        result: the sink's results added up (readings stored, rows the sink dead-lettered itself).
        poison: dead letters for the rows the sink refused, already written by the sink.
        lost: rows that could be neither stored nor dead-lettered (a refused dead letter or
            ledger snapshot), described for the log.
        writes: sink writes made (1 when nothing was refused).
    """

    result: WriteResult
    poison: list[DeadLetter] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    writes: int = 1


def _rows(batch: WriteBatch) -> list[_Row]:
    rows = [_Row("reading", i, p) for p, part in enumerate(batch.parts) for i in range(len(part.readings))]
    rows += [_Row("status", i) for i in range(len(batch.statuses))]
    rows += [_Row("dead_letter", i) for i in range(len(batch.dead_letters))]
    rows += [_Row("ledger", i) for i in range(len(batch.ledger))]
    return rows


def _subset(batch: WriteBatch, rows: list[_Row]) -> WriteBatch:
    """A batch of ``rows`` of ``batch``; readings of one part stay together in one part."""
    out = WriteBatch()
    picked: dict[int, list[int]] = {}
    for r in rows:
        if r.kind == "reading":
            picked.setdefault(r.part, []).append(r.index)
        elif r.kind == "status":
            out.statuses.append(batch.statuses[r.index])
        elif r.kind == "dead_letter":
            out.dead_letters.append(batch.dead_letters[r.index])
        else:
            out.ledger.append(batch.ledger[r.index])
    for p, idx in picked.items():
        part = batch.parts[p]
        if len(idx) == len(part.readings):
            out.parts.append(part)
        else:
            out.parts.append(
                msgspec.structs.replace(
                    part, readings=[part.readings[i] for i in idx], h3=[part.h3[i] for i in idx]
                )
            )
    return out


def _describe(batch: WriteBatch, row: _Row) -> tuple[str, str, bytes]:
    """(park, gw, raw JSON) of a row."""
    if row.kind == "reading":
        part: Part = batch.parts[row.part]
        return part.park, part.gw, _json.encode(part.readings[row.index])
    if row.kind == "status":
        s = batch.statuses[row.index]
        return s.park, s.gw, _json.encode(s.status)
    if row.kind == "dead_letter":
        d = batch.dead_letters[row.index]
        return d.park, d.gw, _json.encode(d)
    r = batch.ledger[row.index]
    return r.park, r.gw, _json.encode(r)


async def write_isolating(sink: Sink, batch: WriteBatch, *, src: str, clock: Callable[[], int]) -> Isolated:
    """Write ``batch``; if the sink refuses its content, store all but the rows at fault.

    Args:
        sink: where to write.
        batch: the batch.
        src: this ingester's name (the ``src`` of the dead letters).
        clock: unique nanosecond timestamps for the dead letters.

    Raises:
        RetryableError: the sink is unavailable (the caller spools the whole batch).
    """
    try:
        return Isolated(result=await sink.write(batch))
    except PermanentError as exc:
        first = str(exc)
    out = Isolated(result=WriteResult(), writes=1)
    refused: list[tuple[_Row, str]] = []

    async def bisect(rows: list[_Row]) -> None:
        out.writes += 1
        try:
            result = await sink.write(_subset(batch, rows))
        except PermanentError as exc:
            if len(rows) == 1:
                refused.append((rows[0], str(exc)))
                return
        else:
            out.result.readings += result.readings
            out.result.rejected += result.rejected
            return
        half = len(rows) // 2
        await bisect(rows[:half])
        await bisect(rows[half:])

    rows = _rows(batch)
    if len(rows) == 1:
        refused.append((rows[0], first))
    else:
        await bisect(rows[: len(rows) // 2])
        await bisect(rows[len(rows) // 2 :])
    for row, reason in refused:
        park, gw, raw = _describe(batch, row)
        if row.kind in ("dead_letter", "ledger"):
            out.lost.append(f"{row.kind} of {park}/{gw}: {reason}")
            continue
        out.poison.append(
            DeadLetter(
                ts_ns=clock(),
                topic=f"{park}/{gw}",
                park=park,
                gw=gw,
                reason=f"{row.kind} refused by the sink: {reason}"[:300],
                raw=truncate_raw(raw),
                src=src,
            )
        )
    if out.poison:
        out.writes += 1
        try:
            await sink.write(WriteBatch(dead_letters=out.poison))
        except PermanentError as exc:
            out.lost += [f"dead letter of {d.park}/{d.gw} ({d.reason}): {exc}" for d in out.poison]
            out.poison = []
    return out
