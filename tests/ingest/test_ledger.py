"""Loss-ledger accounting, table-style."""

from __future__ import annotations

from itertools import accumulate

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.ledger import LossLedger
from storage.ledger_snapshot import LedgerSnapshot
from storage.query import merge_ledger


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


@pytest.mark.parametrize(
    ("stream", "ingesters"),
    [
        (list(range(40)), 2),  # round robin, nothing lost
        (list(range(40)), 3),
        ([*range(10), *range(13, 30)], 2),  # 10, 11, 12 never arrive
        ([0, 1, 2, 5, 3, 4, 6, 7, 9, 10], 2),  # 3 and 4 late, 8 lost
        ([4, 5, 6, 7, 8], 2),  # the gateway had sent batches before anyone listened
    ],
)
def test_ledgers_of_a_shared_subscription_add_up_to_one_ledger(stream: list[int], ingesters: int) -> None:
    whole = LossLedger()
    parts = [LossLedger(ingester=f"ing-{k}") for k in range(ingesters)]
    for i, seq in enumerate(stream):
        whole.observe("p", "g", seq)
        parts[i % ingesters].observe("p", "g", seq)  # the broker hands each message to one member
    (one,) = merge_ledger([msgspec.structs.asdict(r) for r in whole.drain(1)]).rows()
    snapshots = [msgspec.structs.asdict(r) for part in parts for r in part.drain(2)]
    (merged,) = merge_ledger(snapshots).rows()
    assert len(snapshots) == ingesters
    for key in ("received", "missing", "last_seq"):
        assert merged[key] == one[key], (key, merged, one)
    assert merged["missing"] == max(stream) - min(stream) + 1 - len(set(stream))


def test_merge_prefers_named_snapshots_over_ones_from_older_versions() -> None:
    rows = [
        {
            "ts_ms": 1,
            "park": "p",
            "gw": "g",
            "received": 5,
            "missing": 0,
            "duplicated": 0,
            "late": 0,
            "last_seq": 4,
        },
        {
            "ts_ms": 2,
            "park": "p",
            "gw": "g",
            "received": 7,
            "missing": 1,
            "duplicated": 2,
            "late": 0,
            "last_seq": 7,
            "ingester": "a",
        },
    ]
    (r,) = merge_ledger(rows).rows()
    assert (r["received"], r["missing"], r["duplicated"], r["last_seq"], r["ts_ms"]) == (7, 1, 2, 7, 2)
    (legacy,) = merge_ledger(rows[:1]).rows()
    assert (legacy["received"], legacy["missing"]) == (5, 0)


def test_an_ingester_resumes_its_own_snapshot_or_an_unnamed_one() -> None:
    snaps = [
        LedgerSnapshot(
            park="p", gw="g", received=10, missing=0, duplicated=0, late=0, last_seq=9, ingester="a"
        ),
        LedgerSnapshot(
            park="p", gw="g", received=4, missing=6, duplicated=0, late=0, last_seq=10, ingester="b"
        ),
        LedgerSnapshot(
            park="p", gw="h", received=3, missing=0, duplicated=0, late=0, last_seq=2, ingester=None
        ),
        LedgerSnapshot(
            park="p", gw="g", received=1, missing=0, duplicated=0, late=0, last_seq=0, ingester=None
        ),
    ]
    a = LossLedger(ingester="a")
    a.load(snaps)
    totals = a.totals()["received"]
    assert totals == {"g": 10, "h": 3}  # its own for g (not b's, not the unnamed one), the unnamed one for h
    rows = {r.gw: r for r in (a.observe("p", "g", 10), a.observe("p", "h", 3)) and a.drain(5)}
    assert rows["g"].ingester == "a" and rows["g"].received == 11


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [
        # received, missing, duplicated, late, restarts, last_seq
        ([0, 1, 2**63 - 1, 3, 4], (5, 0, 0, 0, 2, 4)),
        ([2**63 - 1, 0, 1, 2], (4, 0, 0, 0, 1, 2)),
        ([5_000_000, 5_000_001, 0, 1], (4, 0, 0, 0, 1, 1)),
        ([0, 1_000_001, 1_000_002], (3, 0, 0, 0, 1, 1_000_002)),
        ([0, 1_000_000], (2, 999_999, 0, 0, 0, 1_000_000)),
    ],
)
def test_jump_beyond_the_window_is_a_restart(seqs: list[int], expected: tuple[int, ...]) -> None:
    ledger = LossLedger()
    outcomes = [ledger.observe("p", "g", s) for s in seqs]
    t = ledger.totals()
    (row,) = ledger.drain(1)
    got = (t["received"]["g"], t["missing"]["g"], t["duplicated"]["g"], t["late"]["g"], t["restarts"]["g"])
    assert (*got, row.last_seq) == expected
    assert row.restarts == expected[4]
    assert outcomes.count("restart") == expected[4]


def test_restarts_survive_a_reload() -> None:
    ledger = LossLedger(ingester="i")
    for s in (0, 2**62, 2**62 + 1):
        ledger.observe("p", "g", s)
    (row,) = ledger.drain(1)
    again = LossLedger(ingester="i")
    again.load([LedgerSnapshot(**{k: v for k, v in msgspec.structs.asdict(row).items() if k != "ts_ms"})])
    assert again.observe("p", "g", 2**62 + 2) == "next"
    assert again.observe("p", "g", 7) == "restart"
    assert again.totals()["restarts"]["g"] == 2
    assert again.totals()["missing"]["g"] == 0


def test_merge_ledger_adds_restarts_and_keeps_missing_sane() -> None:
    rows = [
        {"ts_ms": 1, "park": "p", "gw": "g", "received": 10, "missing": 1, "duplicated": 0, "late": 0,
         "last_seq": 12, "ingester": "a", "restarts": 1},
        {"ts_ms": 2, "park": "p", "gw": "g", "received": 5, "missing": 2, "duplicated": 0, "late": 0,
         "last_seq": 2**63 - 1, "ingester": "b", "restarts": 0},
        {"ts_ms": 2, "park": "p", "gw": "h", "received": 5, "missing": 0, "duplicated": 0, "late": 0,
         "last_seq": 4, "ingester": "a"},
    ]  # fmt: skip
    merged = {r["gw"]: r for r in merge_ledger(rows).rows()}
    assert (merged["g"]["restarts"], merged["g"]["missing"], merged["g"]["received"]) == (1, 3, 15)
    assert (merged["h"]["restarts"], merged["h"]["missing"]) == (0, 0)


class _Reference:
    """The ledger's rules written out plainly, one branch per outcome (the truth for the property below)."""

    def __init__(self, window: int, restart_window: int) -> None:
        self.window, self.restart_window = window, restart_window
        self.last = -1
        self.received = self.missing = self.duplicated = self.late = self.restarts = 0
        self.recent: list[int] = []

    def remember(self, seq: int) -> None:
        self.recent = [*self.recent, seq][-self.window :]

    def observe(self, seq: int) -> str:
        if self.last < 0:
            outcome = "first"
        elif abs(seq - self.last) > self.restart_window:
            self.restarts += 1
            self.recent = []
            outcome = "restart"
        elif seq == self.last + 1:
            outcome = "next"
        elif seq > self.last:
            self.missing += seq - self.last - 1
            outcome = "gap"
        elif seq in self.recent or self.missing == 0:
            self.duplicated += 1
            return "duplicate"
        else:
            self.missing -= 1
            self.late += 1
            self.received += 1
            self.remember(seq)
            return "late"
        self.received += 1
        self.last = seq
        self.remember(seq)
        return outcome


@given(
    # Steps from one number to the next: mostly +1, some gaps and steps back, a few far jumps.
    steps=st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 0, -1, -2, -3, 30, -30]), max_size=80),
    window=st.integers(min_value=1, max_value=6),
    restart_window=st.integers(min_value=1, max_value=20),
)
def test_every_outcome_and_counter_matches_the_plain_rules(
    steps: list[int], window: int, restart_window: int
) -> None:
    seqs = list(accumulate(steps, lambda seq, step: max(0, seq + step), initial=40))
    ledger = LossLedger(window, restart_window=restart_window)
    ref = _Reference(window, restart_window)
    outcomes = [ledger.observe("p", "g", s) for s in seqs]
    assert outcomes == [ref.observe(s) for s in seqs]
    if seqs:
        t = ledger.totals()
        got = tuple(t[k]["g"] for k in ("received", "missing", "duplicated", "late", "restarts"))
        assert got == (ref.received, ref.missing, ref.duplicated, ref.late, ref.restarts)
        assert ledger.last_seq("g") == ref.last


def test_a_restart_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LossLedger(restart_window=0)
