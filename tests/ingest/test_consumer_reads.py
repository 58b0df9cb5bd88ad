"""The consumer's receive path against a real Mosquitto: buffered reads and the PUBLISH fast path.

The consumer reads its socket in 64 KiB chunks and decodes a v5 PUBLISH without properties
itself (paho decodes one with properties). Many small messages in one chunk, a message larger
than a chunk, a message with a content type, one without, and the acks of all of them: every
message arrives whole and in order, with its content type, and the broker takes every ack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import Message, MqttConsumer
from settings.common import BrokerSettings
from tests.ingest.helpers import Publisher, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_every_message_arrives_whole_with_its_content_type(
    mosquitto: ServerProcess, topic_root: str, unique: str, protocol: str
) -> None:
    def session(deliver: Callable[[list[Message]], None]) -> MqttConsumer:
        # The same client id each time: the second connection resumes the first one's session.
        return MqttConsumer(
            broker=BrokerSettings(host=mosquitto.host, port=mosquitto.port, protocol=protocol),  # type: ignore[arg-type]
            client_id=f"ing-{unique}",
            filters=[f"{topic_root}/#"],
            max_unacked=10_000,
            deliver=deliver,
        )

    received: list[Message] = []
    consumer = session(received.extend)
    task = asyncio.create_task(consumer.run())
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    try:
        async with asyncio.timeout(20):
            await consumer.subscribed.wait()
        typed = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        typed.ContentType = "application/msgpack"
        sent: list[tuple[str, bytes, str | None]] = []
        for i in range(500):  # small ones: many per 64 KiB read
            sent.append((f"{topic_root}/small/{i}", f"payload {i}".encode(), None))
        sent.append((f"{topic_root}/big", bytes(range(256)) * 1024, None))  # 256 KiB: several reads
        sent.append((f"{topic_root}/typed", b"\x81\xa1v\x01", "application/msgpack"))
        infos = [pub.client.publish(t, p, qos=1, properties=typed if ctype else None) for t, p, ctype in sent]
        for info in infos:
            info.wait_for_publish(timeout=30)
        await wait_until(lambda: len(received) >= len(sent), what=f"{len(sent)} messages")
        assert [(m.topic, m.payload) for m in received] == [(t, p) for t, p, _ in sent]
        expected_types = [ctype if protocol == "5" else None for _, _, ctype in sent]
        assert [m.content_type for m in received] == expected_types
        assert all(m.qos == 1 and not m.dup for m in received)
        consumer.ack(received)
        assert consumer.pending == 0 and consumer.pending_bytes == 0
        # The broker handles a connection's packets in order, so a SUBACK after the acks proves it
        # has taken them. Without this barrier the reconnect below (same client id, right after the
        # DISCONNECT) can take the session over before the broker has read the old connection's
        # last packets, and those acks are dropped with it.
        consumer.link.subscribed.clear()
        consumer.link.client.subscribe(f"{topic_root}-barrier", qos=1)
        async with asyncio.timeout(20):
            await consumer.link.subscribed.wait()
    finally:
        pub.close()
        await consumer.disconnect()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # The broker took every ack: a new connection of the same session gets nothing resent.
    again: list[Message] = []
    resumed = session(again.extend)
    task = asyncio.create_task(resumed.run())
    try:
        async with asyncio.timeout(20):
            await resumed.subscribed.wait()
        marker = Publisher(mosquitto.host, mosquitto.port, f"mark-{unique}")
        marker.publish(f"{topic_root}/marker", b"end").wait_for_publish(timeout=30)
        marker.close()
        await wait_until(lambda: any(m.topic.endswith("/marker") for m in again), what="the marker")
        assert [m.topic for m in again] == [f"{topic_root}/marker"]
        resumed.ack(again)
    finally:
        await resumed.disconnect()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
