"""Gap repair on the gateway: the buffer keeps published batches until confirmed; lost ones are resent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contract import Confirm, encode
from edge_agent.buffer import DiskBuffer
from edge_agent.confirm import GapRepair, RepairPlanner


def _buffer(tmp_path: Path, batches: int) -> DiskBuffer:
    buf = DiskBuffer(tmp_path / "b.sqlite", gateway="gw-1", max_readings=10_000, max_bytes=10_000_000)
    for i in range(batches):
        buf.put([f'{{"k":"generic","ts":{i},"dev":"d","f":{{"x":1}}}}'.encode()])
        buf.seal(now_ms=1)
    return buf


def _publish_all(buf: DiskBuffer, now_ms: int = 1000) -> list[int]:
    seqs = []
    while (tx := buf.begin()) is not None:
        buf.mark_published(tx, now_ms=now_ms)
        seqs.append(tx.seq)
    return seqs


def test_published_batches_stay_until_confirmed_and_survive_reopen(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, 5)
    assert _publish_all(buf) == [0, 1, 2, 3, 4]
    st = buf.stats()
    assert (st.batches, st.unconfirmed_batches, st.unconfirmed, st.backlog, st.to_send) == (5, 5, 5, 0, 0)
    assert buf.confirm([(0, 1), (3, 3)]) == 3
    buf.close()
    buf = DiskBuffer(tmp_path / "b.sqlite", gateway="gw-1", max_readings=10_000, max_bytes=10_000_000)
    assert buf.unconfirmed_seqs() == [2, 4]
    assert buf.stats().unconfirmed == 2
    assert buf.begin() is None  # published batches are not sent again unless requeued
    assert buf.requeue([2]) == 1
    tx = buf.begin()
    assert tx is not None and tx.seq == 2 and b'"seq":2,' in tx.payload
    assert buf.stats().to_send == 1
    buf.close()


def test_old_buffer_file_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE batches (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL,"
        " payload BLOB NOT NULL); INSERT INTO batches VALUES (7, 3, 30, x'7b7d');"
    )
    db.commit()
    db.close()
    buf = DiskBuffer(path, gateway="gw-1", max_readings=100, max_bytes=100_000)
    tx = buf.begin()
    assert tx is not None and tx.seq == 7
    buf.mark_published(tx, now_ms=5)
    assert buf.stats().unconfirmed == 3
    buf.close()


def test_expire_counts_and_persists(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, 3)
    _publish_all(buf, now_ms=1000)
    assert buf.requeue([1]) == 1
    tx = buf.begin()
    assert tx is not None
    buf.mark_published(tx, now_ms=9000)  # a resend keeps the first publish time
    assert buf.expire(published_before_ms=1000) == 0
    assert buf.expire(published_before_ms=1001) == 3
    buf.close()
    buf = DiskBuffer(tmp_path / "b.sqlite", gateway="gw-1", max_readings=10_000, max_bytes=10_000_000)
    st = buf.stats()
    assert (st.expired, st.batches, st.unconfirmed) == (3, 0, 0)
    buf.close()


def test_cap_drops_unconfirmed_batches_and_keeps_counters(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b.sqlite", gateway="gw-1", max_readings=4, max_bytes=10_000_000)
    for i in range(4):
        buf.put([f'{{"i":{i}}}'.encode()])
        buf.seal(now_ms=1)
    _publish_all(buf)
    assert buf.put([b'{"i":9}']) == 1
    st = buf.stats()
    assert (st.dropped, st.unconfirmed, st.unconfirmed_batches) == (1, 3, 3)
    buf.close()


@pytest.mark.parametrize(
    ("confirms", "unconfirmed", "times", "expect"),
    [
        # Nothing confirmed yet: the ingesters may be down, the broker holds the batches.
        ([], [0, 1, 2], [0.0, 100.0], []),
        # 3 confirmed: 1 is overtaken; resent only after the grace.
        ([[(0, 0), (2, 3)]], [1], [0.0, 9.9], []),
        ([[(0, 0), (2, 3)]], [1], [0.0, 10.0], [1]),
        # A number at or above the highest confirm is not overtaken.
        ([[(0, 2)]], [2, 3], [0.0, 50.0], []),
        # Two ingesters confirm interleaved numbers: nothing is missing, nothing is resent.
        ([[(0, 0), (2, 2)], [(1, 1), (3, 3)]], [], [0.0, 50.0], []),
    ],
)
def test_planner(
    confirms: list[list[tuple[int, int]]], unconfirmed: list[int], times: list[float], expect: list[int]
) -> None:
    planner = RepairPlanner(grace_s=10.0)
    for c in confirms:
        planner.confirmed(c)
    result: list[int] = []
    for t in times:
        result = planner.due(unconfirmed, t)
    assert result == expect


def test_planner_restarts_the_clock_after_a_resend() -> None:
    planner = RepairPlanner(grace_s=10.0)
    planner.confirmed([(5, 5)])
    assert planner.due([1], 0.0) == []
    assert planner.due([1], 10.0) == [1]
    assert planner.due([1], 10.5) == []  # published again: a new grace period
    assert planner.due([1], 20.5) == [1]


async def test_gap_repair_applies_confirms_and_requeues_the_lost(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, 6)
    _publish_all(buf, now_ms=1000)
    now = [0.0]
    woke: list[int] = []
    pool = ThreadPoolExecutor(max_workers=1)
    repair = GapRepair(
        buf,
        executor=pool,
        gateway="gw-1",
        grace_s=5.0,
        retention_s=3600.0,
        wake=lambda: woke.append(1),
        clock_s=lambda: now[0],
        wall_ms=lambda: 2000,
    )
    try:
        # Two ingesters: one stored 0, 2, 4, the other 1 and 5. Batch 3 was lost by the broker.
        assert (
            await repair.apply(encode(Confirm(v=1, gw="gw-1", stored=[(0, 0), (2, 2), (4, 4)], by="a"))) == 3
        )
        assert await repair.apply(encode(Confirm(v=1, gw="gw-1", stored=[(1, 1), (5, 5)], by="b"))) == 2
        assert await repair.apply(encode(Confirm(v=1, gw="gw-9", stored=[(3, 3)]))) == 0
        assert await repair.apply(b'{"v":1,"gw":"gw-1","stored":[[4,3]]}') == 0
        assert repair.confirms_refused == 2
        assert await repair.check() == 0
        now[0] = 5.0
        assert await repair.check() == 1
        assert woke == [1]
        tx = buf.begin()
        assert tx is not None and tx.seq == 3
        assert buf.stats().batches == 1
        assert (repair.confirms, repair.confirmed_batches, repair.resent_batches) == (2, 5, 1)
    finally:
        pool.shutdown()
        buf.close()
