"""The SQLite store-and-forward buffer: cursor semantics, durable seq, drop-oldest cap."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec

from contract.codec import decode_batch, encode_raw_batch
from contract.limits import MAX_PAYLOAD_BYTES
from contract.readings import Machine
from edge_agent.buffer import DiskBuffer, Tx

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
    for i in range(200):  # beyond the 1000 WAL pages at which SQLite would checkpoint by itself
        buf.put(bodies(200, start=200 * i))
        buf.seal(max_readings=500, now_ms=TS0)
    frames, done = buf.checkpoint()
    assert frames > 1000  # nothing folded it inside a commit
    assert done == frames
    tx = buf.begin()
    assert tx is not None and parts(tx.payload) == list(range(200))
    buf.close()


def test_an_older_buffer_file_is_converted_and_its_batches_stay_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    old_payloads = [
        encode_raw_batch(gw="gw-1", seq=seq, sent_ms=TS0 + seq, readings=bodies(3, start=3 * seq))
        for seq in range(3)
    ]
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE staged (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);"
        "CREATE TABLE batches (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL, "
        "payload BLOB NOT NULL, published_ms INTEGER, first_published_ms INTEGER);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE INDEX batches_unpublished ON batches (seq) WHERE published_ms IS NULL;"
        "INSERT INTO meta VALUES ('next_seq', 3), ('dropped', 4);"
    )
    db.executemany(
        "INSERT INTO batches VALUES (?, 3, 30, ?, ?, ?)",
        [
            (seq, p, TS0 if seq == 0 else None, TS0 if seq == 0 else None)
            for seq, p in enumerate(old_payloads)
        ],
    )
    db.executemany("INSERT INTO staged (body) VALUES (?)", [(b,) for b in bodies(2, start=9)])
    db.commit()
    db.close()
    buf = open_buffer(path)
    st = buf.stats()
    assert (st.staged, st.batched, st.batches, st.unconfirmed, st.next_seq, st.dropped) == (2, 9, 3, 3, 3, 4)
    assert buf.unconfirmed_seqs() == [0]
    sent = []
    while (tx := buf.begin()) is not None:
        sent.append(tx.payload)
        buf.mark_published(tx, now_ms=TS0)
    assert sent == old_payloads[1:]
    assert buf.requeue([0]) == 1
    assert buf.begin() == Tx(seq=0, readings=3, payload=old_payloads[0])
    assert buf.seal(now_ms=TS0) == 1
    tx = buf.begin(min_seq=3)
    assert tx is not None and tx.seq == 3 and parts(tx.payload) == [9, 10]
    assert buf.confirm([(0, 3)]) == 4
    assert buf.stats().nbytes == 0
    buf.close()
    db = sqlite3.connect(path)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # The cursor finds batches by index.
    plan = " ".join(
        str(row)
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM batches WHERE seq >= 0 AND published_ms IS NULL ORDER BY seq"
        )
    )
    db.close()
    assert tables - {"sqlite_sequence"} == {"chunks", "batches", "meta"}
    assert "batches_unpublished" in plan


def test_every_reading_is_stored_once_and_marking_published_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = DiskBuffer(path, gateway="gw-1", max_readings=100_000, max_bytes=10**9, autocheckpoint=False)
    batch = bodies(1000)
    for i in range(0, 1000, 200):
        buf.put(batch[i : i + 200])
    buf.checkpoint()
    frames_before_seal, _ = buf.checkpoint()
    assert buf.seal(max_readings=1000, now_ms=TS0) == 1
    tx = buf.begin()
    assert tx is not None and parts(tx.payload) == list(range(1000))
    sealed_frames, _ = buf.checkpoint()
    buf.mark_published(tx, now_ms=TS0)
    marked_frames, _ = buf.checkpoint()
    db = sqlite3.connect(path)
    stored = db.execute("SELECT coalesce(sum(length(body)), 0) FROM chunks").fetchone()[0]
    payloads = db.execute("SELECT count(payload) FROM batches").fetchone()[0]
    db.close()
    # The readings' bytes are on disk once (commas between them), not once more in the batch.
    assert stored == sum(map(len, batch)) + len(batch) - 5
    assert payloads == 0
    # Sealing and marking write a batch's small row, not its readings (a 4 KB WAL frame per page
    # written; the readings alone take 16 pages).
    assert sealed_frames - frames_before_seal <= 4
    assert marked_frames - sealed_frames <= 4
    buf.close()


def test_replay_after_an_outage_is_exact_and_in_order(tmp_path: Path) -> None:
    """An outage long enough for the cap to drop the oldest readings, a restart in the middle,
    uneven writes and batch sizes: what is replayed is every reading not counted as dropped,
    each once, in the order it was put, in consecutive seqs, byte-identical on a resend."""
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path, max_readings=600)
    put = 0
    for round_ in range(30):
        n = 7 + (round_ * 13) % 40
        buf.put(bodies(n, start=put))
        put += n
        if round_ % 3 == 2:
            buf.seal(max_readings=25 + round_, now_ms=TS0 + round_)
        if round_ == 14:
            buf.close()
            buf = open_buffer(path, max_readings=600)
    buf.seal(max_readings=500, now_ms=TS0 + 99)
    st = buf.stats()
    assert st.dropped > 0 and st.staged == 0 and st.batched + st.dropped == put
    first_payload = buf.begin()
    buf.close()
    buf = open_buffer(path, max_readings=600)
    replayed: list[int] = []
    seqs: list[int] = []
    while (tx := buf.begin()) is not None:
        if not seqs:
            assert tx == first_payload
        seqs.append(tx.seq)
        replayed += parts(tx.payload)
        assert tx.readings == len(parts(tx.payload))
        buf.commit(tx)
    assert replayed == list(range(st.dropped, put))
    assert seqs == list(range(seqs[0], st.next_seq))
    assert buf.stats().nbytes == 0
    buf.close()


_WRITER = """
import sys
import msgspec
from contract.readings import Machine
from edge_agent.buffer import DiskBuffer, Tx

buf = DiskBuffer(sys.argv[1], gateway="gw-1", max_readings=10**7, max_bytes=10**10, autocheckpoint=False)
enc = msgspec.json.Encoder()
i = 0
while True:
    n = 1 + i % 37
    buf.put([enc.encode(Machine(ts={ts0} + k, dev="m1", parts_total=k)) for k in range(i, i + n)])
    i += n
    # put() has returned: these readings are promised to survive a crash.
    print(i, flush=True)
    if i % 5 == 0:
        buf.seal(max_readings=50)
    if i % 7 == 0:
        tx = buf.begin()
        if tx is not None:
            buf.mark_published(tx, now_ms={ts0})
    if i % 11 == 0:
        buf.checkpoint()
"""


def test_sigkill_mid_run_loses_no_reading_that_put_returned(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER.format(ts0=TS0), str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert writer.stdout is not None
    promised = 0
    for line in writer.stdout:
        promised = int(line)
        if promised >= 20_000:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    assert promised >= 20_000
    buf = open_buffer(path, max_readings=10**7)
    st = buf.stats()
    buf.seal(max_readings=1000, now_ms=TS0)
    kept: list[int] = []
    while (tx := buf.begin()) is not None:
        kept += parts(tx.payload)
        buf.mark_published(tx, now_ms=TS0)
    buf.close()
    # The published-marked batches were never confirmed: they are still there, re-sendable.
    buf = open_buffer(path, max_readings=10**7)
    assert buf.requeue(buf.unconfirmed_seqs()) > 0
    kept = []
    while (tx := buf.begin()) is not None:
        kept += parts(tx.payload)
        buf.commit(tx)
    buf.close()
    assert st.dropped == 0
    # Everything put before the kill, perhaps a few more readings whose put committed just before
    # it: each once, in order.
    assert kept == list(range(len(kept)))
    assert len(kept) >= promised
