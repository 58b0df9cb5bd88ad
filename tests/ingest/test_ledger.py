"""Loss-ledger accounting, table-style."""

from __future__ import annotations

import pytest

from ingest.ledger import LossLedger
from storage.duckdb_store import LedgerSnapshot


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [
        ([0, 1, 2, 3], (4, 0, 0, 0)),
        ([5, 6, 9], (3, 2, 0, 0)),
        ([0, 1, 1, 2, 0], (3, 0, 2, 0)),
        ([0, 3, 1, 2], (4, 0, 0, 2)),
        ([0, 3, 1, 1], (3, 1, 1, 1)),
        ([10, 12, 11, 11, 13], (4, 0, 1, 1)),
    ],
)
def test_sequences(seqs: list[int], expected: tuple[int, int, int, int]) -> None:
    ledger = LossLedger()
    for s in seqs:
        ledger.observe("p", "g", s)
    t = ledger.totals()
    assert (t["received"]["g"], t["missing"]["g"], t["duplicated"]["g"], t["late"]["g"]) == expected


def test_drain_reports_changed_gateways_once() -> None:
    ledger = LossLedger()
    ledger.observe("p", "a", 0)
    ledger.observe("p", "b", 0)
    rows = ledger.drain(1000)
    assert [(r.gw, r.received, r.last_seq, r.ts_ms) for r in rows] == [("a", 1, 0, 1000), ("b", 1, 0, 1000)]
    assert ledger.drain(2000) == []
    ledger.observe("p", "b", 2)
    assert [(r.gw, r.missing) for r in ledger.drain(3000)] == [("b", 1)]


def test_resumes_from_a_snapshot() -> None:
    ledger = LossLedger()
    ledger.load([LedgerSnapshot(park="p", gw="g", received=10, missing=0, duplicated=0, late=0, last_seq=9)])
    assert ledger.observe("p", "g", 8) == "duplicate"  # a redelivery after a restart
    assert ledger.observe("p", "g", 10) == "next"
    assert ledger.totals()["received"]["g"] == 11
