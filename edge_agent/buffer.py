"""Durable store-and-forward buffer: SQLite in WAL mode, used as a transactional cursor.

Readings are written to disk before anything is published:

1. :meth:`DiskBuffer.put` stages encoded readings (one row each).
2. :meth:`DiskBuffer.seal` turns staged readings, oldest first, into encoded telemetry batches
   and gives each its sequence number there and then. A batch is stored with its final bytes,
   so every resend (after a reconnect, or after a restart) carries the same ``seq``, ``sent``
   and readings. The next sequence number is stored in the same transaction, so it survives
   restarts and never goes backwards.
3. :meth:`DiskBuffer.begin` hands out the oldest stored batch not yet published (in a seq
   range, skipping those already in flight); :meth:`DiskBuffer.commit` deletes it after the
   broker's PUBACK. A crash between the two replays the batch.
4. Held until confirmed (gap repair): instead of :meth:`~DiskBuffer.commit`,
   :meth:`DiskBuffer.mark_published` keeps the PUBACKed batch, marked published, until
   :meth:`DiskBuffer.confirm` deletes it when an ingester reports it stored.
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
SD card never stalls the event loop. Partial indexes on the publishing state let the cursor and
the retention check skip the batches' payloads (SQLite reads a row's columns in order, and the
state columns come after a payload of up to 256 KB).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from contract.codec import encode_raw_batch
from contract.ids import check_id
from contract.limits import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_BATCH

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS staged (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, nbytes INTEGER NOT NULL, payload BLOB NOT NULL,
    published_ms INTEGER, first_published_ms INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_INDEXES: Final = """
CREATE INDEX IF NOT EXISTS batches_unpublished ON batches (seq) WHERE published_ms IS NULL;
CREATE INDEX IF NOT EXISTS batches_published ON batches (first_published_ms) WHERE published_ms IS NOT NULL;
"""
_PUBLISHED_COLUMNS: Final = ("published_ms", "first_published_ms")
"""Columns added for gap repair; a buffer file from an older agent gets them on open."""
_ENVELOPE_RESERVE: Final = 200
"""Bytes kept free in a batch payload for the envelope (version, gateway, seq, sent)."""


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
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        for column in _PUBLISHED_COLUMNS:
            if column not in columns:
                self._db.execute(f"ALTER TABLE batches ADD COLUMN {column} INTEGER")
        self._db.executescript(_INDEXES)
        self._staged, self._staged_bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM staged"
        ).fetchone()
        self._batched, self._batches, self._batched_bytes = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*), coalesce(sum(nbytes), 0) FROM batches"
        ).fetchone()
        self._unconfirmed, self._unconfirmed_batches = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*) FROM batches WHERE published_ms IS NOT NULL"
        ).fetchone()
        self._next_seq = self._meta("next_seq")
        self._dropped = self._meta("dropped")
        self._expired = self._meta("expired")

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
            self._db.executemany("INSERT INTO staged (body) VALUES (?)", [(b,) for b in bodies])
            self._staged += len(bodies)
            self._staged_bytes += sum(len(b) for b in bodies)
            dropped = self._enforce_cap()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        return dropped

    def seal(self, *, max_readings: int = MAX_READINGS_PER_BATCH, now_ms: int | None = None) -> int:
        """Turn every staged reading into batches of at most ``max_readings``; return the count.

        A batch also stays under the contract's payload limit.
        """
        if self._staged == 0:
            return 0
        max_readings = max(1, min(max_readings, MAX_READINGS_PER_BATCH))
        sent = int(time.time() * 1000) if now_ms is None else now_ms
        budget = MAX_PAYLOAD_BYTES - _ENVELOPE_RESERVE
        formed = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute("SELECT id, body FROM staged ORDER BY id").fetchall()
            chunk: list[bytes] = []
            size = 0
            last_id = 0
            for row_id, body in rows:
                if chunk and (len(chunk) >= max_readings or size + len(body) + 1 > budget):
                    self._store_batch(chunk, sent)
                    formed += 1
                    chunk, size = [], 0
                chunk.append(body)
                size += len(body) + 1
                last_id = row_id
            if chunk:
                self._store_batch(chunk, sent)
                formed += 1
            self._db.execute("DELETE FROM staged WHERE id <= ?", (last_id,))
            self._set_meta("next_seq", self._next_seq)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._reload_counters()
            raise
        self._staged = 0
        self._staged_bytes = 0
        return formed

    def _store_batch(self, bodies: list[bytes], sent_ms: int) -> None:
        seq = self._next_seq
        payload = encode_raw_batch(gw=self.gateway, seq=seq, sent_ms=sent_ms, readings=bodies)
        nbytes = sum(len(b) for b in bodies)
        self._db.execute(
            "INSERT INTO batches (seq, n, nbytes, payload) VALUES (?, ?, ?, ?)",
            (seq, len(bodies), nbytes, payload),
        )
        self._next_seq = seq + 1
        self._batched += len(bodies)
        self._batches += 1
        self._batched_bytes += nbytes

    def begin(
        self, *, min_seq: int = 0, max_seq: int | None = None, exclude: Collection[int] = ()
    ) -> Tx | None:
        """The oldest unpublished batch with ``min_seq <= seq < max_seq`` not in ``exclude``, or None."""
        hi = 2**63 - 1 if max_seq is None else max_seq
        sql = "SELECT seq, n, payload FROM batches WHERE seq >= ? AND seq < ? AND published_ms IS NULL"
        params: list[int] = [min_seq, hi]
        if exclude:
            sql += f" AND seq NOT IN ({','.join('?' * len(exclude))})"
            params.extend(exclude)
        row = self._db.execute(sql + " ORDER BY seq LIMIT 1", params).fetchone()
        return None if row is None else Tx(seq=row[0], readings=row[1], payload=row[2])

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
        row = self._db.execute("SELECT n, published_ms FROM batches WHERE seq = ?", (tx.seq,)).fetchone()
        if row is None or row[1] is not None:
            return
        self._db.execute(
            "UPDATE batches SET published_ms = ?, first_published_ms = coalesce(first_published_ms, ?) "
            "WHERE seq = ?",
            (now_ms, now_ms, tx.seq),
        )
        self._unconfirmed += row[0]
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
        """Delete matching batches inside the caller's transaction; return how many."""
        n, nbytes, count, un, un_count = self._db.execute(
            "SELECT coalesce(sum(n), 0), coalesce(sum(nbytes), 0), count(*), "
            "coalesce(sum(CASE WHEN published_ms IS NOT NULL THEN n END), 0), "
            f"count(published_ms) FROM batches WHERE {where}",
            params,
        ).fetchone()
        if count:
            self._db.execute(f"DELETE FROM batches WHERE {where}", params)
            self._batched -= n
            self._batches -= count
            self._batched_bytes -= nbytes
            self._unconfirmed -= un
            self._unconfirmed_batches -= un_count
        return int(count)

    # ------------------------------------------------------------------ cap and stats

    def _enforce_cap(self) -> int:
        dropped = 0
        while self._over_cap() and self._batches:
            seq, n = self._db.execute("SELECT seq, n FROM batches ORDER BY seq LIMIT 1").fetchone()
            self._delete_where("seq = ?", (seq,))
            dropped += n
        if self._over_cap():
            excess = max(
                self._staged + self._batched - self.max_readings,
                1 if self._staged_bytes + self._batched_bytes > self.max_bytes else 0,
            )
            while self._over_cap() and self._staged:
                rows = self._db.execute(
                    "SELECT id, length(body) FROM staged ORDER BY id LIMIT ?", (max(1, excess),)
                ).fetchall()
                self._db.execute("DELETE FROM staged WHERE id <= ?", (rows[-1][0],))
                self._staged -= len(rows)
                self._staged_bytes -= sum(r[1] for r in rows)
                dropped += len(rows)
                excess = 1
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
        self._staged, self._staged_bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM staged"
        ).fetchone()
        self._batched, self._batches, self._batched_bytes = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*), coalesce(sum(nbytes), 0) FROM batches"
        ).fetchone()
        self._unconfirmed, self._unconfirmed_batches = self._db.execute(
            "SELECT coalesce(sum(n), 0), count(*) FROM batches WHERE published_ms IS NOT NULL"
        ).fetchone()
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
