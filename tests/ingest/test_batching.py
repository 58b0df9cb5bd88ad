"""While every writer is busy, a due batch keeps filling; it is written once a writer is free.

Before, a batch was cut at every flush tick and queued behind the busy writer, so a slow store
got many small writes (each with its own request overhead) exactly when it was slowest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.model import WriteBatch, WriteResult
from ingest.service import Ingester
from tests.fakes import FakeSink
from tests.ingest.helpers import Publisher, batch_for, ingest_settings, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@dataclass(kw_only=True)
class GatedSink(FakeSink):
    """Holds every write until ``gate`` is set; ``entered`` is set when the first write arrives."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, batch: WriteBatch) -> WriteResult:
        self.entered.set()
        await self.gate.wait()
        return await super().write(batch)


async def test_a_due_batch_waits_for_a_free_writer_and_grows(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(tmp_path / "unused.duckdb")},
        tmp=tmp_path,
        flush_interval_s=0.02,
        batch_readings=100_000,
        write_concurrency=1,
    )
    sink = GatedSink()
    ing = Ingester(settings, sink=sink)
    stop = asyncio.Event()
    task = asyncio.create_task(ing.run(stop))
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    try:
        async with asyncio.timeout(20):
            await ing.ready.wait()
        pub.publish_batches(topic_root, "hp-a", [batch_for("gw-0", 0, 1)])
        async with asyncio.timeout(20):
            await sink.entered.wait()  # the only writer now holds the first batch
        later = 300
        await asyncio.to_thread(
            pub.publish_batches, topic_root, "hp-a", [batch_for("gw-1", i, 1) for i in range(later)]
        )
        await wait_until(
            lambda: ing.metrics.messages["telemetry"] >= 1 + later, what="every message processed"
        )
        sink.gate.set()
        await wait_until(lambda: ing.metrics.readings_stored >= 1 + later, what="every reading stored")
        # Many flush ticks passed while the writer was busy: still one batch for all of them.
        assert [b.reading_count() for b in sink.batches] == [1, later]
        assert ing.consumer.pending == 0
    finally:
        pub.close()
        sink.gate.set()
        stop.set()
        await asyncio.wait_for(task, 30)
