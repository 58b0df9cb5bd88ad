"""Durable store-and-forward buffer: SQLite in WAL mode, used as a transactional cursor.

Readings are written to disk before anything is published, and each reading is written once:

1. :meth:`DiskBuffer.put` stores encoded readings as one *chunk* row: their JSON joined by
   commas, exactly the bytes they take inside a batch's ``readings`` array. Every chunk is
   numbered by its first reading (readings are numbered in order of arrival), so chunk numbers
   keep the readings' order.
2. :meth:`DiskBuffer.seal` groups the staged chunks, oldest first, into telemetry batches and
   gives each its sequence number and ``sent`` stamp there and then: a batch row is a few
   integers (``seq``, ``sent``, its first and last chunk) and never copies the readings. The
   next sequence number is stored in the same transaction, so it survives restarts and never
   goes backwards. A chunk larger than a batch may hold is split when it is sealed.
3. :meth:`DiskBuffer.begin` hands out the oldest stored batch not yet published (in a seq
   range, skipping those already in flight), its payload built from its chunks by the codec's
   envelope: the same bytes on every resend (after a reconnect, or after a restart), with the
   same ``seq``, ``sent`` and readings. :meth:`DiskBuffer.commit` deletes it (and its chunks)
   after the broker's PUBACK. A crash between the two replays the batch.
4. Held until confirmed (gap repair): instead of :meth:`~DiskBuffer.commit`,
   :meth:`DiskBuffer.mark_published` keeps the PUBACKed batch, marked published in its small
   row, until :meth:`DiskBuffer.confirm` deletes it when an ingester reports it stored.
   :meth:`DiskBuffer.requeue` makes a published batch sendable again (same bytes, same ``seq``);
   :meth:`DiskBuffer.expire` deletes published batches still unconfirmed after the retention
   age and counts their readings in ``expired`` (persisted).

Size cap and drop-oldest policy: when the readings held (staged plus batched) exceed
``max_readings``, or their bytes exceed ``max_bytes``, whole batches are dropped oldest first,
then the oldest staged readings. Every dropped reading is counted in ``dropped`` (persisted)
and reported in the agent's status. A dropped batch's ``seq`` is simply never sent, so the
receivers' loss ledger counts the gap.

Synchronous on purpose. The agent calls it on the event loop: every operation is a small
transaction that, in WAL mode with ``synchronous=NORMAL``, writes to the operating system's page
cache and never waits for the disk; handing each one to a worker thread cost more (two thread
wake-ups each) than the work itself. The one operation that syncs to disk, folding the WAL into
the database file, is :meth:`DiskBuffer.checkpoint`: with ``autocheckpoint=False`` SQLite never
does it inside a commit, and the agent runs it on a worker thread (its own connection), so a slow
SD card never stalls the event loop.

A buffer file of an older agent (one row per staged reading, batches stored as whole payloads)
is converted when it is opened, in one transaction: its staged readings become a chunk, its
batches keep their stored payload (column ``payload``, empty for every newer batch), ``seq`` and
publishing state.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from contract.codec import encode_raw_batch
from contract.ids import check_id
from contract.limits import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_BATCH

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    first_chunk INTEGER NOT NULL, last_chunk INTEGER NOT NULL, sent_ms INTEGER NOT NULL,
    published_ms INTEGER, first_published_ms INTEGER, payload BLOB
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_unpublished ON batches (seq) WHERE published_ms IS NULL;
CREATE INDEX IF NOT EXISTS batches_published ON batches (first_published_ms) WHERE published_ms IS NOT NULL;
"""
_ENVELOPE_RESERVE: Final = 200
"""Bytes kept free in a batch payload for the envelope (version, gateway, seq, sent)."""
_BUDGET: Final = MAX_PAYLOAD_BYTES - _ENVELOPE_RESERVE
"""Bytes a batch's readings may take, one comma each included."""
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])


def _split(body: bytes) -> list[bytes]:
    """The readings of a chunk body, each as its exact bytes."""
    return [bytes(r) for r in _RAW_LIST.decode(b"[" + body + b"]")]


@dataclass(frozen=True, slots=True)
class Tx:
    """One batch handed out by :meth:`DiskBuffer.begin`; commit it after the PUBACK."""

    seq: int
    readings: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Fill of the buffer.

    Attributes:
        staged: readings not yet in a batch.
        batched: readings in sealed batches (waiting for their PUBACK or their confirm).
        batches: number of such batches.
        unconfirmed: readings in published batches kept until an ingester confirms them.
        unconfirmed_batches: number of such batches.
        expired: readings of published batches deleted unconfirmed after the retention age.
        nbytes: stored reading bytes.
        dropped: readings dropped by the size cap since the buffer was created.
        fill_pct: the larger of the reading and byte fill, in percent of the caps.
        next_seq: the sequence number of the next sealed batch.
    """

    staged: int
    batched: int
    batches: int
    nbytes: int
    dropped: int
    fill_pct: float
    next_seq: int
    unconfirmed: int = 0
    unconfirmed_batches: int = 0
    expired: int = 0

    @property
    def backlog(self) -> int:
        """Readings waiting to be published (staged plus batched, less the unconfirmed)."""
        return self.staged + self.batched - self.unconfirmed

    @property
    def to_send(self) -> int:
        """Batches waiting to be published."""
        return self.batches - self.unconfirmed_batches


class DiskBuffer:
    """The on-disk buffer of one gateway (see the module docstring).

    Args:
        path: SQLite file (created with its directory when missing).
        gateway: gateway id written into every batch envelope.
        max_readings: cap on readings held.
        max_bytes: cap on reading bytes held.
        autocheckpoint: let SQLite fold the WAL into the database inside commits (the default);
            ``False``: the owner calls :meth:`checkpoint` regularly, off its event loop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        gateway: str,
        max_readings: int,
        max_bytes: int,
        autocheckpoint: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.gateway = check_id(gateway, "gateway")
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only a power loss may lose
        # the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        if not autocheckpoint:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer: sqlite3.Connection | None = None
        self._staged = self._staged_bytes = self._next_id = 0
        self._batched = self._batches = self._batched_bytes = 0
        self._unconfirmed = self._unconfirmed_batches = 0
        self._next_seq = self._dropped = self._expired = 0
        self._pending: deque[list[int]] = deque()
        """Staged chunks, oldest first: ``[id, readings, reading bytes]``."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            old = self._old_tables()
            if old:
                self._rename_old(old)
            # One statement at a time: executescript() would commit the transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if old:
                self._convert_old(old)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._db.close()
            raise
        self._reload_counters()

    # ------------------------------------------------------------------ older buffer files

    def _old_tables(self) -> set[str]:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        old = tables & {"staged"}
        if "batches" in tables:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
            if "first_chunk" not in columns:
                old.add("batches")
        return old

    def _rename_old(self, old: set[str]) -> None:
        self._db.execute("DROP INDEX IF EXISTS batches_unpublished")
        self._db.execute("DROP INDEX IF EXISTS batches_published")
        if "batches" in old:
            self._db.execute("ALTER TABLE batches RENAME TO old_batches")

    def _convert_old(self, old: set[str]) -> None:
        """Move an older file's batches and staged readings into chunks, in order."""
        if "batches" in old:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(old_batches)")}
            published = "published_ms, first_published_ms" if "published_ms" in columns else "NULL, NULL"
            rows = self._db.execute(
                f"SELECT seq, n, nbytes, payload, {published} FROM old_batches ORDER BY seq"
            ).fetchall()
            # Kept as they are (no chunks: an empty chunk range), so they stay byte-identical.
            self._db.executemany(
                "INSERT INTO batches (seq, n, nbytes, first_chunk, last_chunk, sent_ms, published_ms, "
                "first_published_ms, payload) VALUES (?, ?, ?, 0, -1, 0, ?, ?, ?)",
                [
                    (seq, n, nbytes, pub, first_pub, payload)
                    for seq, n, nbytes, payload, pub, first_pub in rows
                ],
            )
            self._db.execute("DROP TABLE old_batches")
        if "staged" in old:
            bodies = [b for (b,) in self._db.execute("SELECT body FROM staged ORDER BY id")]
            self._next_id = 0
            if bodies:
                self._insert_chunks(bodies)
            self._db.execute("DROP TABLE staged")

    # ------------------------------------------------------------------ housekeeping

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def checkpoint(self) -> tuple[int, int]:
        """Fold the WAL into the database file on a connection of its own (``PASSIVE``: it never
        waits for, nor blocks, the other operations). It syncs to disk: call it off the event loop.

        Returns:
            The WAL's frames and how many of them are now in the database file.
        """
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        _busy, frames, done = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames), int(done)

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL into the main file)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._db.close()

    # ------------------------------------------------------------------ the cursor

    def put(self, bodies: Sequence[bytes]) -> int:
        """Store encoded readings durably; return how many older readings the cap dropped."""
        if not bodies:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_chunks(bodies)
            dropped = self._enforce_cap()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        return dropped

    def _insert_chunks(self, bodies: Sequence[bytes]) -> None:
        """Store staged readings as chunks that each fit in a batch, inside the caller's transaction."""
        nbytes = sum(map(len, bodies))
        if len(bodies) <= MAX_READINGS_PER_BATCH and nbytes + len(bodies) <= _BUDGET:
            groups: list[Sequence[bytes]] = [bodies]
        else:
            groups = self._fit(bodies, MAX_READINGS_PER_BATCH)
        for group in groups:
            n, size = len(group), nbytes if len(groups) == 1 else sum(map(len, group))
            self._db.execute(
                "INSERT INTO chunks (id, n, nbytes, body) VALUES (?, ?, ?, ?)",
                (self._next_id, n, size, b",".join(group)),
            )
            self._pending.append([self._next_id, n, size])
            self._next_id += n
            self._staged += n
            self._staged_bytes += size

    @staticmethod
    def _fit(bodies: Sequence[bytes], max_readings: int) -> list[Sequence[bytes]]:
        """Cut readings into groups of at most ``max_readings`` within the byte budget."""
        groups: list[Sequence[bytes]] = []
        first = size = 0
        for i, body in enumerate(bodies):
            if i > first and (i - first >= max_readings or size + len(body) + 1 > _BUDGET):
                groups.append(bodies[first:i])
                first, size = i, 0
            size += len(body) + 1
        groups.append(bodies[first:])
        return groups

    def _resplit(self, chunk: list[int], max_readings: int) -> list[list[int]]:
        """Replace a staged chunk by pieces that each fit in a batch (inside the caller's
        transaction); return the pieces as ``[id, readings, reading bytes]``."""
        chunk_id = chunk[0]
        (body,) = self._db.execute("SELECT body FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        self._db.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
        pieces: list[list[int]] = []
        offset = 0
        for group in self._fit(_split(body), max_readings):
            size = sum(map(len, group))
            self._db.execute(
                "INSERT INTO chunks (id, n, nbytes, body) VALUES (?, ?, ?, ?)",
                (chunk_id + offset, len(group), size, b",".join(group)),
            )
            pieces.append([chunk_id + offset, len(group), size])
            offset += len(group)
        return pieces

    def seal(self, *, max_readings: int = MAX_READINGS_PER_BATCH, now_ms: int | None = None) -> int:
        """Turn every staged reading into batches of at most ``max_readings``; return the count.

        A batch also stays under the contract's payload limit.
        """
        if not self._pending:
            return 0
        max_readings = max(1, min(max_readings, MAX_READINGS_PER_BATCH))
        sent = int(time.time() * 1000) if now_ms is None else now_ms
        rows: list[tuple[int, int, int, int, int, int]] = []
        seq = self._next_seq
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # [first chunk, last chunk, readings, reading bytes] of the batch being filled
            batch: list[int] | None = None
            for chunk in self._pending:
                pieces = [chunk]
                if chunk[1] > max_readings or chunk[2] + chunk[1] > _BUDGET:
                    pieces = self._resplit(chunk, max_readings)
                for chunk_id, n, size in pieces:
                    if batch is not None and (
                        batch[2] + n > max_readings or batch[3] + batch[2] + size + n > _BUDGET
                    ):
                        rows.append((seq, batch[2], batch[3], batch[0], batch[1], sent))
                        seq += 1
                        batch = None
                    if batch is None:
                        batch = [chunk_id, chunk_id, n, size]
                    else:
                        batch[1] = chunk_id
                        batch[2] += n
                        batch[3] += size
            if batch is not None:
                rows.append((seq, batch[2], batch[3], batch[0], batch[1], sent))
                seq += 1
            self._db.executemany(
                "INSERT INTO batches (seq, n, nbytes, first_chunk, last_chunk, sent_ms) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._set_meta("next_seq", seq)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        self._next_seq = seq
        self._batched += self._staged
        self._batched_bytes += self._staged_bytes
        self._batches += len(rows)
        self._pending.clear()
        self._staged = self._staged_bytes = 0
        return len(rows)

    def begin(
        self, *, min_seq: int = 0, max_seq: int | None = None, exclude: Collection[int] = ()
    ) -> Tx | None:
        """The oldest unpublished batch with ``min_seq <= seq < max_seq`` not in ``exclude``, or None."""
        hi = 2**63 - 1 if max_seq is None else max_seq
        sql = (
            "SELECT seq, n, first_chunk, last_chunk, sent_ms, payload FROM batches "
            "WHERE seq >= ? AND seq < ? AND published_ms IS NULL"
        )
        params: list[int] = [min_seq, hi]
        if exclude:
            sql += f" AND seq NOT IN ({','.join('?' * len(exclude))})"
            params.extend(exclude)
        row = self._db.execute(sql + " ORDER BY seq LIMIT 1", params).fetchone()
        if row is None:
            return None
        seq, n, first, last, sent_ms, payload = row
        if payload is not None:  # a batch from an older buffer file
            return Tx(seq=seq, readings=n, payload=payload)
        bodies = [
            b
            for (b,) in self._db.execute(
                "SELECT body FROM chunks WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
            )
        ]
        payload = encode_raw_batch(gw=self.gateway, seq=seq, sent_ms=sent_ms, readings=bodies)
        return Tx(seq=seq, readings=n, payload=payload)

    def commit(self, tx: Tx) -> None:
        """Delete an acknowledged batch (a no-op if the cap already dropped it)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._delete_where("seq = ?", (tx.seq,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise

    # ------------------------------------------------------------------ held until confirmed

    def mark_published(self, tx: Tx, *, now_ms: int) -> None:
        """Keep an acknowledged batch until confirmed (a no-op if it is gone already)."""
        cur = self._db.execute(
            "UPDATE batches SET published_ms = ?, first_published_ms = coalesce(first_published_ms, ?) "
            "WHERE seq = ? AND published_ms IS NULL",
            (now_ms, now_ms, tx.seq),
        )
        if cur.rowcount:
            self._unconfirmed += tx.readings
            self._unconfirmed_batches += 1

    def confirm(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Delete the batches in the inclusive seq ranges (published or not); return how many."""
        deleted = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for first, last in ranges:
                deleted += self._delete_where("seq BETWEEN ? AND ?", (first, last))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        return deleted

    def unconfirmed_seqs(self) -> list[int]:
        """Sequence numbers of the published batches waiting for a confirm, ascending."""
        rows = self._db.execute("SELECT seq FROM batches WHERE published_ms IS NOT NULL ORDER BY seq")
        return [r[0] for r in rows]

    def requeue(self, seqs: Collection[int]) -> int:
        """Make published batches sendable again (they keep bytes and ``seq``); return how many."""
        if not seqs:
            return 0
        marks = ",".join("?" * len(seqs))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            n, count = self._db.execute(
                f"SELECT coalesce(sum(n), 0), count(*) FROM batches "
                f"WHERE published_ms IS NOT NULL AND seq IN ({marks})",
                tuple(seqs),
            ).fetchone()
            self._db.execute(
                f"UPDATE batches SET published_ms = NULL WHERE published_ms IS NOT NULL AND seq IN ({marks})",
                tuple(seqs),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        self._unconfirmed -= n
        self._unconfirmed_batches -= count
        return int(count)

    def expire(self, *, published_before_ms: int) -> int:
        """Delete published batches first sent before the cutoff and still unconfirmed.

        Returns the readings given up; they are added to ``expired``.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (n,) = self._db.execute(
                "SELECT coalesce(sum(n), 0) FROM batches "
                "WHERE published_ms IS NOT NULL AND first_published_ms < ?",
                (published_before_ms,),
            ).fetchone()
            if n:
                self._delete_where(
                    "published_ms IS NOT NULL AND first_published_ms < ?", (published_before_ms,)
                )
                self._expired += n
                self._set_meta("expired", self._expired)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        return int(n)

    def _delete_where(self, where: str, params: tuple[int, ...]) -> int:
        """Delete matching batches and their chunks inside the caller's transaction; return how many."""
        rows = self._db.execute(
            f"SELECT first_chunk, last_chunk, n, nbytes, published_ms IS NOT NULL FROM batches WHERE {where}",
            params,
        ).fetchall()
        if rows:
            self._db.execute(f"DELETE FROM batches WHERE {where}", params)
            self._db.executemany(
                "DELETE FROM chunks WHERE id BETWEEN ? AND ?", [(first, last) for first, last, *_ in rows]
            )
            for _first, _last, n, nbytes, published in rows:
                self._batched -= n
                self._batched_bytes -= nbytes
                if published:
                    self._unconfirmed -= n
                    self._unconfirmed_batches -= 1
            self._batches -= len(rows)
        return len(rows)

    # ------------------------------------------------------------------ cap and stats

    def _enforce_cap(self) -> int:
        dropped = 0
        while self._over_cap() and self._batches:
            seq, n = self._db.execute("SELECT seq, n FROM batches ORDER BY seq LIMIT 1").fetchone()
            self._delete_where("seq = ?", (seq,))
            dropped += n
        while self._over_cap() and self._pending:
            chunk_id, n, nbytes = self._pending[0]
            excess = self._staged + self._batched - self.max_readings
            excess_bytes = self._staged_bytes + self._batched_bytes - self.max_bytes
            if excess >= n or excess_bytes >= nbytes:
                self._db.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
                self._pending.popleft()
                k, freed = n, nbytes
            else:
                # Drop the chunk's oldest readings only: keep its tail as a chunk of its own.
                (body,) = self._db.execute("SELECT body FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
                self._db.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
                readings = _split(body)
                k = freed = 0
                while k < excess or freed < excess_bytes:
                    freed += len(readings[k])
                    k += 1
                tail = readings[k:]
                self._db.execute(
                    "INSERT INTO chunks (id, n, nbytes, body) VALUES (?, ?, ?, ?)",
                    (chunk_id + k, n - k, nbytes - freed, b",".join(tail)),
                )
                self._pending[0] = [chunk_id + k, n - k, nbytes - freed]
            self._staged -= k
            self._staged_bytes -= freed
            dropped += k
        if dropped:
            self._dropped += dropped
            self._set_meta("dropped", self._dropped)
        return dropped

    def _over_cap(self) -> bool:
        return bool(
            self._staged + self._batched > self.max_readings
            or self._staged_bytes + self._batched_bytes > self.max_bytes
        )

    def _reload_counters(self) -> None:
        self._batched, self._batches, self._batched_bytes, last_chunk = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*), coalesce(sum(nbytes), 0), coalesce(max(last_chunk), -1) "
            "FROM batches"
        ).fetchone()
        self._unconfirmed, self._unconfirmed_batches = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*) FROM batches WHERE published_ms IS NOT NULL"
        ).fetchone()
        # Chunks are sealed oldest first and deleted with their batch: those after the newest
        # batch's last chunk are the staged ones.
        self._pending = deque(
            [
                list(r)
                for r in self._db.execute(
                    "SELECT id, n, nbytes FROM chunks WHERE id > ? ORDER BY id", (last_chunk,)
                )
            ]
        )
        self._staged = sum(c[1] for c in self._pending)
        self._staged_bytes = sum(c[2] for c in self._pending)
        (self._next_id,) = self._db.execute("SELECT coalesce(max(id + n), 0) FROM chunks").fetchone()
        self._next_seq = self._meta("next_seq")
        self._dropped = self._meta("dropped")
        self._expired = self._meta("expired")

    def stats(self) -> BufferStats:
        """Current fill and counters."""
        held = self._staged + self._batched
        nbytes = self._staged_bytes + self._batched_bytes
        fill = max(held / self.max_readings, nbytes / self.max_bytes) * 100.0
        return BufferStats(
            staged=self._staged,
            batched=self._batched,
            batches=self._batches,
            nbytes=nbytes,
            dropped=self._dropped,
            fill_pct=round(min(fill, 100.0), 2),
            next_seq=self._next_seq,
            unconfirmed=self._unconfirmed,
            unconfirmed_batches=self._unconfirmed_batches,
            expired=self._expired,
        )
