"""Poison isolation with an in-memory sink: bisection down to the rows the sink refuses."""

from __future__ import annotations

import itertools
import math

import pytest

from contract import Energy, Status
from contract.messages import Uplink
from ingest.errors import PermanentError, RetryableError
from ingest.isolate import write_isolating
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch, WriteResult
from storage.ledger_snapshot import LedgerSnapshot

NOW = 1_790_000_000_000


class FakeSink:
    """Stores whole batches, refusing (like a real store, atomically) any batch with a poison row."""

    def __init__(self, *, outage_after: int | None = None) -> None:
        self.readings: list[str] = []
        self.statuses: list[str] = []
        self.dead_letters: list[DeadLetter] = []
        self.ledger: list[LedgerRow] = []
        self.writes = 0
        self._outage_after = outage_after

    @staticmethod
    def _poison(batch: WriteBatch) -> str | None:
        for part in batch.parts:
            for r in part.readings:
                if r.dev.startswith("bad"):
                    return f"cannot store {r.dev}"
        for s in batch.statuses:
            if s.status.uplink is not None and math.isnan(s.status.uplink.rsrp_dbm or 0.0):
                return "non-finite float nan"
        for d in batch.dead_letters:
            if d.reason == "unstorable":
                return "dead letter refused"
        for row in batch.ledger:
            if row.missing < 0:
                return "ledger refused"
        return None

    async def start(self) -> list[LedgerSnapshot]:
        return []

    async def write(self, batch: WriteBatch) -> WriteResult:
        self.writes += 1
        if self._outage_after is not None and self.writes > self._outage_after:
            raise RetryableError("connection refused")
        why = self._poison(batch)
        if why is not None:
            raise PermanentError(why)
        self.readings += [r.dev for p in batch.parts for r in p.readings]
        self.statuses += [s.gw for s in batch.statuses]
        self.dead_letters += batch.dead_letters
        self.ledger += batch.ledger
        return WriteResult(readings=batch.reading_count())

    async def aclose(self) -> None:
        pass


def _part(gw: str, devs: list[str]) -> Part:
    readings = [Energy(ts=NOW + i, dev=d, power_kw=1.0) for i, d in enumerate(devs)]
    return Part(park="p", gw=gw, readings=list(readings), h3=[0] * len(readings), sent_ms=NOW)


def _status(gw: str, rsrp: float) -> StatusRow:
    return StatusRow(
        ts_ms=NOW, park="p", gw=gw, status=Status(v=1, gw=gw, state="online", uplink=Uplink(rsrp_dbm=rsrp))
    )


def _ledger(gw: str, missing: int = 0) -> LedgerRow:
    return LedgerRow(
        ts_ms=NOW, park="p", gw=gw, received=1, missing=missing, duplicated=0, late=0, last_seq=0
    )


_clock = itertools.count(1).__next__


async def test_a_clean_batch_is_one_write() -> None:
    sink = FakeSink()
    iso = await write_isolating(sink, WriteBatch(parts=[_part("g", ["a", "b"])]), src="i", clock=_clock)
    assert (iso.writes, sink.writes, iso.result.readings, iso.poison) == (1, 1, 2, [])


async def test_nan_status_is_dead_lettered_and_every_reading_stored() -> None:
    sink = FakeSink()
    devs = [f"d{i}" for i in range(1000)]
    batch = WriteBatch(
        parts=[_part("canary", devs[:500]), _part("other", devs[500:])],
        statuses=[_status("canary", -90.0), _status("sick", math.nan)],
        ledger=[_ledger("canary")],
    )
    iso = await write_isolating(sink, batch, src="ing-1", clock=_clock)
    assert sorted(sink.readings) == sorted(devs)
    assert iso.result.readings == 1000
    assert sink.statuses == ["canary"]
    assert [r.gw for r in sink.ledger] == ["canary"]
    (dead,) = iso.poison
    assert (dead.park, dead.gw, dead.src) == ("p", "sick", "ing-1")
    assert dead.reason == "status refused by the sink: non-finite float nan"
    assert '"rsrp_dbm"' in dead.raw
    assert sink.dead_letters == [dead]
    # 1 refused write, then a bisection over 1003 rows for one bad row: about 2 log2(n) writes.
    assert iso.writes <= 2 + 2 * math.ceil(math.log2(1003)) + 1
    assert iso.writes == sink.writes


async def test_several_bad_readings_in_several_parts_are_each_isolated() -> None:
    sink = FakeSink()
    parts = [_part("g1", ["a", "bad-1", "b", "c"]), _part("g2", ["d", "e", "bad-2"]), _part("g3", ["bad-3"])]
    iso = await write_isolating(sink, WriteBatch(parts=parts), src="i", clock=_clock)
    assert sorted(sink.readings) == ["a", "b", "c", "d", "e"]
    assert sorted((d.gw, d.reason) for d in iso.poison) == [
        ("g1", "reading refused by the sink: cannot store bad-1"),
        ("g2", "reading refused by the sink: cannot store bad-2"),
        ("g3", "reading refused by the sink: cannot store bad-3"),
    ]
    assert all('"dev":"bad-' in d.raw for d in iso.poison)
    assert len({d.ts_ns for d in iso.poison}) == 3


async def test_a_single_refused_row_is_not_written_again() -> None:
    sink = FakeSink()
    iso = await write_isolating(sink, WriteBatch(parts=[_part("g", ["bad"])]), src="i", clock=_clock)
    assert [d.gw for d in iso.poison] == ["g"]
    assert sink.writes == 2  # the refused batch, then its dead letter


async def test_refused_dead_letter_and_ledger_rows_are_reported_lost() -> None:
    sink = FakeSink()
    dead = DeadLetter(ts_ns=1, topic="t", park="p", gw="g", reason="unstorable", raw="")
    batch = WriteBatch(parts=[_part("g", ["a"])], dead_letters=[dead], ledger=[_ledger("g", missing=-1)])
    iso = await write_isolating(sink, batch, src="i", clock=_clock)
    assert sink.readings == ["a"]
    assert iso.poison == []
    assert len(iso.lost) == 2
    assert any(x.startswith("dead_letter of p/g") for x in iso.lost)
    assert any(x.startswith("ledger of p/g") for x in iso.lost)


async def test_an_outage_during_the_search_propagates() -> None:
    sink = FakeSink(outage_after=2)
    with pytest.raises(RetryableError):
        await write_isolating(
            sink, WriteBatch(parts=[_part("g", ["a", "bad", "b", "c"])]), src="i", clock=_clock
        )
