"""In-memory fakes of the storage protocols, for fast unit tests beside the real-server ones.

:class:`FakeQuery` implements :class:`storage.query.QueryBackend` over tables given up front;
:class:`FakeSink` implements :class:`ingest.sinks.base.Sink` by keeping every batch it is given.
Both record their calls, so a test can assert what was asked as well as what was answered.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from ingest.errors import RetryableError
from ingest.model import WriteBatch, WriteResult
from storage.dead_letters import DeadLetterFilter, DeadLetterRow
from storage.ledger_snapshot import LedgerSnapshot
from storage.query import (
    Agg,
    BroadbandStats,
    CellSamples,
    CellStats,
    EnergyBuckets,
    FieldBuckets,
    LedgerRows,
    MachineBuckets,
    NetworkRows,
    Scope,
    StatusRows,
)

_T = TypeVar(
    "_T", CellStats, CellSamples, NetworkRows, BroadbandStats, MachineBuckets, EnergyBuckets, FieldBuckets,
    StatusRows, LedgerRows,
)  # fmt: skip


def _in_scope(table: _T, scope: Scope) -> _T:
    """The rows of ``table`` in the scope's parks and gateway (time and filters are the test's job)."""
    keep = np.ones(len(table), dtype=bool)
    if scope.parks is not None:
        keep &= np.isin(table.park.astype(str), list(scope.parks))
    gw = getattr(table, "gw", None)
    if scope.gw is not None and gw is not None:
        keep &= gw == scope.gw
    cut: _T = table.take(keep)
    return cut


@dataclass(kw_only=True)
class FakeQuery:
    """A query backend answering each method with its table, cut to the scope's parks.

    ``fields`` maps ``(kind, field)`` to the buckets of that alarm field. ``version`` is what
    :meth:`data_version` answers; change it to say "the data changed". ``calls`` lists the
    methods called, in order.
    """

    cells: CellStats = field(default_factory=CellStats)
    samples: CellSamples = field(default_factory=CellSamples)
    network_rows: NetworkRows = field(default_factory=NetworkRows)
    broadband: BroadbandStats = field(default_factory=BroadbandStats)
    machine: MachineBuckets = field(default_factory=MachineBuckets)
    energy: EnergyBuckets = field(default_factory=EnergyBuckets)
    fields: dict[tuple[str, str], FieldBuckets] = field(default_factory=dict)
    status_rows: StatusRows = field(default_factory=StatusRows)
    ledger_rows: LedgerRows = field(default_factory=LedgerRows)
    dead_letter_rows: list[DeadLetterRow] = field(default_factory=list)
    version: Hashable | None = 0
    calls: list[str] = field(default_factory=list)
    closed: bool = False

    def cell_stats(self, scope: Scope, *, resolution: int) -> CellStats:
        self.calls.append("cell_stats")
        cut = _in_scope(self.cells, scope)
        keep = np.ones(len(cut), dtype=bool)
        if scope.operator is not None:
            keep &= np.array([str(o).lower() == scope.operator.lower() for o in cut.operator], dtype=bool)
        if scope.tech is not None:
            keep &= cut.tech == scope.tech
        filtered: CellStats = cut.take(keep)
        return filtered

    def cell_samples(self, scope: Scope, *, resolution: int) -> CellSamples:
        self.calls.append("cell_samples")
        return _in_scope(self.samples, scope)

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        self.calls.append("networks")
        return _in_scope(self.network_rows, scope)

    def broadband_stats(self, scope: Scope, *, by: Literal["gw", "park"] = "gw") -> BroadbandStats:
        self.calls.append("broadband_stats")
        return _in_scope(self.broadband, scope)

    def machine_buckets(self, scope: Scope, *, bucket_s: int) -> MachineBuckets:
        self.calls.append("machine_buckets")
        return _in_scope(self.machine, scope)

    def energy_buckets(self, scope: Scope, *, bucket_s: int) -> EnergyBuckets:
        self.calls.append("energy_buckets")
        return _in_scope(self.energy, scope)

    def field_buckets(self, kind: str, scope: Scope, *, bucket_s: int, field: str, agg: Agg) -> FieldBuckets:
        self.calls.append("field_buckets")
        return _in_scope(self.fields.get((kind, field), FieldBuckets()), scope)

    def status(self, scope: Scope, *, latest: bool) -> StatusRows:
        self.calls.append("status")
        return _in_scope(self.status_rows, scope)

    def ledger(self, scope: Scope) -> LedgerRows:
        self.calls.append("ledger")
        return _in_scope(self.ledger_rows, scope)

    def dead_letters(self, scope: Scope, flt: DeadLetterFilter) -> list[DeadLetterRow]:
        self.calls.append("dead_letters")
        rows = [r for r in self.dead_letter_rows if scope.parks is None or r.park in scope.parks]
        return rows[flt.offset : flt.offset + flt.limit]

    def data_version(self, scope: Scope | None = None) -> Hashable | None:
        return self.version

    def ping(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


@dataclass(kw_only=True)
class FakeSink:
    """A sink that keeps every batch it stores.

    ``ledger`` is what :meth:`start` hands back; ``down`` makes :meth:`write` raise
    :class:`RetryableError` (the store is unavailable) until it is cleared.
    """

    ledger: list[LedgerSnapshot] = field(default_factory=list)
    down: bool = False
    started: bool = False
    closed: bool = False
    batches: list[WriteBatch] = field(default_factory=list)

    async def start(self) -> list[LedgerSnapshot]:
        self.started = True
        return list(self.ledger)

    async def write(self, batch: WriteBatch) -> WriteResult:
        if self.down:
            raise RetryableError("the fake store is down", retry_after_s=0.0)
        self.batches.append(batch)
        return WriteResult(readings=batch.reading_count())

    async def aclose(self) -> None:
        self.closed = True
