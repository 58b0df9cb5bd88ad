"""Messages arrive in batches (one list per socket read); the guarantees stay per message.

QoS 0 messages (Sparkplug B nodes publish their data so) take the same path and are released
from flow control without an acknowledgement.

With Mosquitto queueing hundreds of small messages, one 64 KiB read carries many of them. The
consumer still stops at its bounds exactly (on MQTT 3.1.1, where the broker knows no Receive
Maximum, only the consumer holds the count bound), and the ingester acknowledges a message only
once its reading is durably stored or spooled: checked at every ack the broker is sent, through
a sink that holds each write until the test lets it through or fails it as an outage. After the
spool replays, a new connection of the same session gets nothing again: every ack arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.errors import RetryableError
from ingest.model import WriteBatch, WriteResult
from ingest.mqtt import Message, MqttConsumer
from ingest.service import Ingester
from settings.common import BrokerSettings
from tests.fakes import FakeSink
from tests.ingest.helpers import Publisher, batch_for, ingest_settings, running, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize(
    ("max_unacked", "max_unacked_bytes", "hold"),
    [(50, 0, 50), (10_000, 2_000, 20)],
    ids=["count-bound", "byte-bound"],
)
async def test_batched_reads_stop_exactly_at_the_bounds(
    mosquitto: ServerProcess,
    topic_root: str,
    unique: str,
    protocol: str,
    max_unacked: int,
    max_unacked_bytes: int,
    hold: int,
) -> None:
    received: list[Message] = []
    batch_sizes: list[int] = []
    held: list[tuple[int, int]] = []  # (pending, pending_bytes) after every delivery

    def deliver(batch: list[Message]) -> None:
        received.extend(batch)
        batch_sizes.append(len(batch))
        held.append((consumer.pending, consumer.pending_bytes))

    consumer = MqttConsumer(
        broker=BrokerSettings(host=mosquitto.host, port=mosquitto.port, protocol=protocol),  # type: ignore[arg-type]
        client_id=f"ing-{unique}",
        filters=[f"{topic_root}/#"],
        deliver=deliver,
        max_unacked=max_unacked,
        max_unacked_bytes=max_unacked_bytes,
    )
    task = asyncio.create_task(consumer.run())
    total = 400
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    try:
        async with asyncio.timeout(20):
            await consumer.subscribed.wait()
        infos = [pub.publish(f"{topic_root}/m/{i}", i.to_bytes(2, "big") * 50) for i in range(total)]
        for info in infos:
            info.wait_for_publish(timeout=30)
        acked = 0
        while acked < total:
            # Reading pauses at the bound; each ack of 10 lets exactly 10 more in.
            await _held(consumer, min(hold, total - acked))
            consumer.ack(received[acked : acked + 10])
            acked += min(10, total - acked)
        assert [m.payload[:2] for m in received] == [i.to_bytes(2, "big") for i in range(total)]
        assert max(n for n, _ in held) == hold  # reached, never passed (each payload: 100 bytes)
        assert max(b for _, b in held) == hold * 100
        assert max(batch_sizes) > 1  # reads carried several messages: the batched path was taken
        assert consumer.pending == 0 and consumer.pending_bytes == 0
    finally:
        pub.close()
        await consumer.disconnect()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_qos0_messages_take_the_batched_path_and_are_never_acked(
    mosquitto: ServerProcess, topic_root: str, unique: str, protocol: str
) -> None:
    received: list[Message] = []
    batch_sizes: list[int] = []

    def deliver(batch: list[Message]) -> None:
        received.extend(batch)
        batch_sizes.append(len(batch))

    consumer = MqttConsumer(
        broker=BrokerSettings(host=mosquitto.host, port=mosquitto.port, protocol=protocol),  # type: ignore[arg-type]
        client_id=f"ing-{unique}",
        filters=[f"{topic_root}/#"],
        deliver=deliver,
        max_unacked=10_000,
    )
    acked: list[int] = []
    link_ack = consumer.link.ack

    def recorded_ack(mids: Sequence[int]) -> None:
        acked.extend(mids)
        link_ack(mids)

    consumer.link.ack = recorded_ack  # type: ignore[method-assign]
    task = asyncio.create_task(consumer.run())
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    try:
        async with asyncio.timeout(20):
            await consumer.subscribed.wait()
        infos = [pub.client.publish(f"{topic_root}/q0/{i}", b"zero %d" % i, qos=0) for i in range(300)]
        infos.append(pub.publish(f"{topic_root}/q1", b"one"))  # QoS 1: after them, in order
        for info in infos:
            info.wait_for_publish(timeout=30)
        await wait_until(lambda: len(received) == 301, what="301 messages")
        assert [m.payload for m in received[:300]] == [b"zero %d" % i for i in range(300)]
        assert all(
            m.qos == 0 and m.mid == 0 and m.topic == f"{topic_root}/q0/{i}"
            for i, m in enumerate(received[:300])
        )
        assert received[300].qos == 1 and received[300].mid > 0
        assert max(batch_sizes) > 1  # several per read: the batched path, not paho's
        consumer.ack(received)
        assert acked == [received[300].mid]  # QoS 0 messages are released, never acknowledged
        assert consumer.pending == 0 and consumer.pending_bytes == 0
    finally:
        pub.close()
        await consumer.disconnect()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _held(consumer: MqttConsumer, n: int) -> None:
    await wait_until(lambda: consumer.pending == n, what=f"{n} messages held")


@dataclass(kw_only=True)
class HeldSink(FakeSink):
    """Each write waits for a permit; ``outage`` makes the writes it lets through fail as an outage."""

    permits: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))
    outage: bool = False
    attempts: int = 0
    failed: int = 0

    async def write(self, batch: WriteBatch) -> WriteResult:
        self.attempts += 1
        await self.permits.acquire()
        if self.outage:
            self.failed += 1
            raise RetryableError("held sink: outage", retry_after_s=0.05)
        return await super().write(batch)


def _ids(batches: Sequence[WriteBatch]) -> set[tuple[str, int]]:
    return {(p.gw, r.ts) for b in batches for p in b.parts for r in p.readings}


async def test_acks_follow_the_durable_write_or_spool_and_all_arrive(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(tmp_path / "unused.duckdb")},
        tmp=tmp_path,
        write_concurrency=1,
        batch_readings=50,
        confirm=False,
    )
    sink = HeldSink()
    ing = Ingester(settings, sink=sink)
    acked: list[int] = []
    spooled: list[WriteBatch] = []
    spool_put = ing.spool.put

    def recorded_put(batch: WriteBatch) -> None:
        spool_put(batch)
        spooled.append(batch)  # after the put returned: on disk

    ing.spool.put = recorded_put  # type: ignore[method-assign]

    def durable() -> set[tuple[str, int]]:
        return _ids(sink.batches) | _ids(spooled)

    link_ack = ing.consumer.link.ack

    def checked_ack(mids: Sequence[int]) -> None:
        # Every message carries one reading: never more acks than readings made durable.
        assert len(acked) + len(mids) <= len(durable()), "an ack ran ahead of the durable write"
        acked.extend(mids)
        link_ack(mids)

    ing.consumer.link.ack = checked_ack  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(ing.run(stop))
    total = 300
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    try:
        async with asyncio.timeout(20):
            await ing.ready.wait()
        pub.publish_batches(topic_root, "hp-a", [batch_for(f"gw-{i % 3}", i // 3, 1) for i in range(total)])
        await wait_until(lambda: ing.consumer.pending == total, what="every message received")
        await wait_until(lambda: sink.attempts >= 1, what="the first write")
        assert acked == []  # all received, none written: nothing acknowledged
        sink.permits.release()  # the first write (at most 50 readings) goes through
        await wait_until(lambda: len(acked) == len(durable()) > 0, what="the first write's acks")
        assert len(acked) <= 50
        sink.outage = True  # the next writes fail: spooled, then acknowledged
        for _ in range(3):
            sink.permits.release()
        await wait_until(lambda: sink.failed >= 1 and spooled, what="a spooled batch")
        sink.outage = False
        for _ in range(1000):
            sink.permits.release()  # everything else, replays included, goes through
        await wait_until(lambda: len(acked) == total, what="every message acknowledged")
        await wait_until(lambda: len(_ids(sink.batches)) == total, what="every reading stored")
        # Reads hold more messages than a batch takes: each batch is cut at batch_readings.
        assert max(b.reading_count() for b in sink.batches) == 50
        assert ing.metrics.batches_replayed >= 1
        assert ing.consumer.pending == 0 and ing.consumer.pending_bytes == 0
    finally:
        pub.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    # The broker took every ack: the same session, resumed, gets only a new marker message.
    again = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(tmp_path / "again.duckdb")},
        tmp=tmp_path,
    )
    async with running(again) as resumed:
        marker = Publisher(mosquitto.host, mosquitto.port, f"mark-{unique}")
        marker.publish_batches(topic_root, "hp-a", [batch_for("gw-marker", 0, 1)])
        marker.close()
        await wait_until(lambda: resumed.metrics.readings_stored >= 1, what="the marker stored")
        assert sum(resumed.metrics.messages.values()) == 1
