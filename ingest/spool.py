"""A bounded, ordered disk spool of write batches the sink could not take.

One MessagePack file per batch, named by a monotonically increasing number, written to a
temporary name, fsynced and renamed, so a crash leaves either the whole batch or nothing.
Store-and-forward as a transactional cursor: ``begin()`` returns the oldest batch, ``commit()``
deletes it once the sink has it; a crash in between replays it (writes are idempotent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ingest.model import WriteBatch

_SUFFIX = ".batch"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(WriteBatch)


class SpoolFull(Exception):
    """The spool reached its size cap; the caller must wait (intake pauses, nothing is dropped)."""


class SpoolCorrupt(Exception):
    """A spooled file cannot be read back (it is moved aside as ``*.bad``)."""


@dataclass(frozen=True, slots=True)
class SpoolTx:
    """A batch taken from the spool and not yet committed."""

    path: Path
    size: int


class Spool:
    """Batches on disk under ``directory``, at most ``max_bytes`` in total.

    Blocking file I/O: async callers run these methods with ``asyncio.to_thread``.
    """

    def __init__(self, directory: str | Path, *, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        files = sorted(self.dir.glob(f"*{_SUFFIX}"))
        self._queue = [(p, p.stat().st_size) for p in files]
        self._next = int(files[-1].stem) + 1 if files else 1
        self.bytes = sum(s for _, s in self._queue)

    @property
    def depth(self) -> int:
        """Batches waiting."""
        return len(self._queue)

    def put(self, batch: WriteBatch) -> None:
        """Append a batch durably.

        Raises:
            SpoolFull: the cap would be exceeded (a batch larger than the cap still goes into an
                empty spool, so one huge batch cannot wedge the ingester).
        """
        data = _encoder.encode(batch)
        if self._queue and self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.dir} holds {self.bytes} bytes (cap {self.max_bytes})")
        path = self.dir / f"{self._next:016d}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
        self._fsync_dir()
        self._next += 1
        self._queue.append((path, len(data)))
        self.bytes += len(data)

    def begin(self) -> tuple[SpoolTx, WriteBatch] | None:
        """The oldest batch, or ``None`` when the spool is empty.

        Raises:
            SpoolCorrupt: the oldest file is unreadable; it was moved aside.
        """
        if not self._queue:
            return None
        path, size = self._queue[0]
        try:
            batch = _decoder.decode(path.read_bytes())
        except (msgspec.DecodeError, OSError) as exc:
            self._queue.pop(0)
            self.bytes -= size
            path.rename(path.with_suffix(".bad"))
            raise SpoolCorrupt(f"spool file {path} unreadable, moved aside: {exc}") from exc
        return SpoolTx(path=path, size=size), batch

    def commit(self, tx: SpoolTx) -> None:
        """Delete a batch the sink has taken."""
        if self._queue and self._queue[0][0] == tx.path:
            self._queue.pop(0)
            self.bytes -= tx.size
        tx.path.unlink(missing_ok=True)

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
