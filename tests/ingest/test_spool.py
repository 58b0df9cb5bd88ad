"""The disk spool: order, cap, survival across reopen, corrupt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.model import DeadLetter, WriteBatch
from ingest.spool import Spool, SpoolCorrupt, SpoolFull
from tests.ingest.helpers import readings_for


def _batch(i: int) -> WriteBatch:
    from ingest.model import Part

    readings = readings_for("g", i, 3, base_ms=1_700_000_000_000)
    return WriteBatch(
        parts=[Part(park="p", gw="g", readings=readings, h3=[0] * 3, sent_ms=i)],
        dead_letters=[DeadLetter(ts_ns=i, topic="t", park="p", gw="g", reason="r", raw="x")],
    )


def test_fifo_and_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.put(_batch(i))
    taken = spool.begin()
    assert taken is not None and taken[1] == _batch(0)
    spool.commit(taken[0])
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.depth == 2
    got = []
    while (t := reopened.begin()) is not None:
        got.append(t[1].parts[0].sent_ms)
        reopened.commit(t[0])
    assert got == [1, 2]
    assert reopened.bytes == 0
    reopened.put(_batch(9))
    assert int(sorted(tmp_path.glob("*.batch"))[-1].stem) == 4  # numbering continues


def test_cap(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1)
    spool.put(_batch(0))  # an empty spool always takes one batch
    with pytest.raises(SpoolFull):
        spool.put(_batch(1))


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.put(_batch(0))
    spool.put(_batch(1))
    first = sorted(tmp_path.glob("*.batch"))[0]
    first.write_bytes(b"\xc1garbage")
    with pytest.raises(SpoolCorrupt):
        spool.begin()
    taken = spool.begin()
    assert taken is not None and taken[1].parts[0].sent_ms == 1
    assert first.with_suffix(".bad").exists()
