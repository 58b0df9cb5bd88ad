"""Flow control by message count and by bytes; a batch is written as soon as intake pauses.

Before, a paused intake waited for the flush timer: with many one-reading messages the ingester
took one bound's worth of messages per tick. The tests set the timer to 5 s and send a dozen
bounds' worth or more: waiting for the timer at every pause would take a minute or more, while
flushing on pause stores all but the stream's tail at once (the tail, below either bound,
is written at the next tick, as it should be).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.ingest.helpers import Publisher, batch_for, ingest_settings, running, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def _stored(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        total = 0
        for table in ("cellular", "machine", "energy", "environment", "broadband", "generic"):
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            total += int(row[0])
        return total


@pytest.mark.parametrize(
    ("readings_per_message", "bounds"),
    [(1, {"max_unacked": 50}), (20, {"max_unacked": 10_000, "max_unacked_mb": 0.01})],
    ids=["message-bound", "byte-bound"],
)
async def test_a_paused_intake_writes_at_once(
    mosquitto: ServerProcess,
    topic_root: str,
    unique: str,
    tmp_path: Path,
    readings_per_message: int,
    bounds: dict[str, Any],
) -> None:
    db = tmp_path / "store.duckdb"
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
        flush_interval_s=5.0,
        batch_readings=100_000,
        **bounds,
    )
    messages = 600
    total = messages * readings_per_message
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(
            topic_root,
            "hp-a",
            [batch_for(f"gw-{i % 3}", i // 3, readings_per_message) for i in range(messages)],
        )
        pub.close()
        # Waiting for the 5 s flush timer at each pause would take many minutes (a pause every few
        # messages); writing at once takes seconds, up to ~30 s on a loaded 2-core machine.
        await wait_until(lambda: ing.metrics.readings_stored >= total, timeout_s=90, what=f"{total} readings")
        assert ing.consumer.pending == 0 and ing.consumer.pending_bytes == 0
    assert _stored(db) == total


def test_defaults_let_small_messages_flow_and_bound_bytes() -> None:
    from settings.ingest import IngestOptions

    opts = IngestOptions()
    assert opts.max_unacked >= 10_000  # one-reading messages are not held to a few hundred per write
    assert 0 < opts.max_unacked_mb <= 64  # big messages are bounded by bytes
