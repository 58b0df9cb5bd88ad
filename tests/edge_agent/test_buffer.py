"""The SQLite store-and-forward buffer: cursor semantics, durable seq, drop-oldest cap."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from contract.codec import decode_batch
from contract.limits import MAX_PAYLOAD_BYTES
from contract.readings import Machine
from edge_agent.buffer import DiskBuffer

TS0 = 1_795_000_000_000


def bodies(n: int, start: int = 0, dev: str = "m1") -> list[bytes]:
    return [msgspec.json.encode(Machine(ts=TS0 + i, dev=dev, parts_total=i)) for i in range(start, start + n)]


def open_buffer(path: Path, **kw: int) -> DiskBuffer:
    return DiskBuffer(
        path,
        gateway="gw-1",
        max_readings=kw.get("max_readings", 10_000),
        max_bytes=kw.get("max_bytes", 10**9),
    )


def parts(payload: bytes) -> list[int]:
    out: list[int] = []
    for r in decode_batch(payload, now_ms=TS0).readings:
        assert isinstance(r, Machine) and r.parts_total is not None
        out.append(r.parts_total)
    return out


def test_put_seal_begin_commit(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite")
    buf.put(bodies(25))
    assert buf.seal(max_readings=10, now_ms=TS0) == 3
    st = buf.stats()
    assert (st.staged, st.batched, st.batches, st.next_seq) == (0, 25, 3, 3)
    tx = buf.begin()
    assert tx is not None and tx.seq == 0 and tx.readings == 10
    decoded = decode_batch(tx.payload, now_ms=TS0)
    assert (decoded.gw, decoded.seq, decoded.sent) == ("gw-1", 0, TS0)
    assert parts(tx.payload) == list(range(10))
    second = buf.begin(exclude={0})
    assert second is not None and second.seq == 1
    buf.commit(tx)
    assert buf.begin() == second
    assert buf.begin(max_seq=1) is None
    assert buf.begin(min_seq=2) is not None and buf.begin(min_seq=2).seq == 2  # type: ignore[union-attr]
    assert buf.stats().backlog == 15
    buf.close()


def test_uncommitted_batches_and_seq_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path)
    buf.put(bodies(5))
    buf.seal(now_ms=TS0)
    buf.put(bodies(3, start=5))
    payload = buf.begin().payload  # type: ignore[union-attr]
    buf.close()  # also what a crash leaves behind: nothing was committed
    buf = open_buffer(path)
    tx = buf.begin()
    assert tx is not None and tx.seq == 0 and tx.payload == payload
    assert buf.stats().staged == 3
    buf.commit(tx)
    buf.seal(now_ms=TS0 + 1)
    tx = buf.begin()
    assert tx is not None and tx.seq == 1 and parts(tx.payload) == [5, 6, 7]
    buf.commit(tx)
    buf.close()
    buf = open_buffer(path)
    buf.put(bodies(1, start=8))
    buf.seal(now_ms=TS0)
    assert buf.begin().seq == 2  # type: ignore[union-attr]
    buf.close()


def test_cap_drops_oldest_batches_first_then_oldest_staged(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite", max_readings=20)
    buf.put(bodies(10))
    buf.seal(max_readings=5, now_ms=TS0)  # seq 0: 0-4, seq 1: 5-9
    assert buf.put(bodies(12, start=10)) == 5  # 22 > 20: batch seq 0 goes
    st = buf.stats()
    assert (st.dropped, st.backlog, st.batches) == (5, 17, 1)
    assert buf.begin().seq == 1  # type: ignore[union-attr]
    assert buf.put(bodies(10, start=22)) == 7  # batch seq 1 (5) then 2 staged readings
    assert buf.stats().dropped == 12
    buf.seal(max_readings=1000, now_ms=TS0)
    tx = buf.begin()
    assert tx is not None and parts(tx.payload) == list(range(12, 32))
    assert buf.stats().fill_pct == 100.0
    buf.close()
    assert open_buffer(tmp_path / "b.sqlite", max_readings=20).stats().dropped == 12


def test_byte_cap(tmp_path: Path) -> None:
    one = len(bodies(1)[0])
    buf = open_buffer(tmp_path / "b.sqlite", max_bytes=one * 10 + 5)
    buf.put(bodies(15))
    st = buf.stats()
    assert st.staged <= 10 and st.dropped == 15 - st.staged


def test_batches_stay_under_the_payload_limit(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite")
    big = [
        msgspec.json.encode(Machine(ts=TS0, dev="d" * 60, tags={f"k{i}": "v" * 120 for i in range(8)}))
        for _ in range(1000)
    ]
    buf.put(big)
    n = buf.seal(max_readings=1000, now_ms=TS0)
    assert n > 1
    while (tx := buf.begin()) is not None:
        assert len(tx.payload) <= MAX_PAYLOAD_BYTES
        assert decode_batch(tx.payload, now_ms=TS0).rejected == []
        buf.commit(tx)


def test_without_autocheckpoint_the_wal_is_folded_only_by_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = DiskBuffer(path, gateway="gw-1", max_readings=100_000, max_bytes=10**9, autocheckpoint=False)
    for i in range(80):  # beyond the 1000 WAL pages at which SQLite would checkpoint by itself
        buf.put(bodies(200, start=200 * i))
        buf.seal(max_readings=500, now_ms=TS0)
    frames, done = buf.checkpoint()
    assert frames > 1000  # nothing folded it inside a commit
    assert done == frames
    tx = buf.begin()
    assert tx is not None and parts(tx.payload) == list(range(200))
    buf.close()


def test_an_older_buffer_file_gets_the_publishing_columns_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE batches (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL, "
        "payload BLOB NOT NULL);"
    )
    db.close()
    buf = open_buffer(path)
    buf.put(bodies(3))
    buf.seal(now_ms=TS0)
    tx = buf.begin()
    assert tx is not None
    buf.mark_published(tx, now_ms=TS0)
    assert buf.begin() is None
    assert buf.expire(published_before_ms=TS0 + 1) == 3
    buf.close()
    db = sqlite3.connect(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    # The cursor and the retention check find batches by index, never by reading past payloads.
    plan = " ".join(
        str(row)
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM batches WHERE seq >= 0 AND published_ms IS NULL ORDER BY seq"
        )
    )
    db.close()
    assert {"batches_unpublished", "batches_published"} <= indexes
    assert "batches_unpublished" in plan
