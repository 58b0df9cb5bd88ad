"""MQTT intake: QoS 1, persistent session, manual ack, bounded unacknowledged messages.

The connection (paho on the asyncio loop, TLS, reconnect with backoff, SUBACK readiness, refused
logins explained) is a :class:`mqttlink.MqttLink`; this module adds what intake needs on top.
Messages are acknowledged only when the service calls :meth:`MqttConsumer.ack`, after the sink
has them. Unacknowledged messages are bounded by count and by bytes: MQTT v5 tells the broker our
*Receive Maximum*, and whatever the protocol, reading from the socket pauses while ``max_unacked``
messages or ``max_unacked_bytes`` of payload are outstanding (:attr:`MqttConsumer.intake_full`).
The count bound lets many small messages in (one reading per message is common); the byte bound
keeps memory in check when messages are large.

Messages reach the service in lists, one per socket read (usually dozens to hundreds of small
messages): the per-message work of the receive path is one tuple cut out of the read buffer and
one :class:`Message`; the calls, the clock reading and the flow-control check are per read.

Acknowledgements belong to one connection: after a reconnect the broker resends unacknowledged
messages, so acks for messages of an earlier connection are dropped and the resent copies (written
again, idempotently) are acked instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from contract.limits import MAX_DEAD_LETTER_RAW_BYTES
from mqttlink import Backoff, MqttLink, Publish
from settings.common import BrokerSettings

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps our session (and queues messages for it) while we are away."""
PACKET_HEADROOM = 4
"""MQTT v5: the broker is told a Maximum Packet Size of this many times ``max_payload_bytes``.
Payloads between the two are received and dead-lettered (the sender learns why); a larger
packet is discarded by the broker (MQTT v5 section 3.1.2.11.4) and never occupies our memory."""


class Message(msgspec.Struct, kw_only=True, gc=False):
    """One received message and what is needed to acknowledge it.

    A struct (one per message: built faster than a dataclass; ``gc=False``: nothing it holds
    can lead back to it). Not frozen: the ingester drops ``payload`` once the message is
    decoded, so that a message waiting for its write holds only its readings, not its bytes
    as well.
    """

    topic: str
    payload: bytes
    received_ms: int
    mid: int
    generation: int
    content_type: str | None = None
    qos: int = 1
    dup: bool = False
    oversize_bytes: int = 0
    """The payload's size when it exceeded the consumer's limit; ``payload`` then holds only
    its first :data:`contract.limits.MAX_DEAD_LETTER_RAW_BYTES` bytes (for the dead letter)."""
    size: int = 0
    """Payload bytes the consumer counted against ``max_unacked_bytes`` (released by the ack)."""


class MqttConsumer:
    """Subscribes to topic filters and hands messages to ``deliver``.

    Args:
        broker: connection settings.
        client_id: fixed client id; the persistent session is kept under it.
        filters: topic filters (QoS 1), shared subscriptions allowed with MQTT v5.
        max_unacked: bound on received-but-unacknowledged messages.
        max_unacked_bytes: bound on their payload bytes (0: no byte bound).
        deliver: called in the event loop with the messages of one read, in order.
        max_payload_bytes: larger payloads are delivered cut to their first bytes, with
            ``oversize_bytes`` set, and never copied (0: no limit).
        delay: reconnect delay by attempt (injectable for tests).
        will: ``(topic, payload)`` of a retained QoS 1 Last Will (Sparkplug host STATE).
        on_connected: called on the loop after every accepted CONNACK.
    """

    def __init__(
        self,
        *,
        broker: BrokerSettings,
        client_id: str,
        filters: list[str],
        max_unacked: int,
        max_unacked_bytes: int = 0,
        deliver: Callable[[list[Message]], None],
        delay: Backoff | None = None,
        max_payload_bytes: int = 0,
        will: tuple[str, bytes] | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self._max_unacked = max_unacked
        self._max_unacked_bytes = max_unacked_bytes
        self._deliver = deliver
        self._max_payload = max_payload_bytes
        self._v5 = broker.protocol == "5"
        self.link = MqttLink(
            broker,
            client_id=client_id,
            session_expiry_s=SESSION_EXPIRY_S,
            subscriptions=[(f, 1) for f in filters],
            backoff=delay,
            manual_ack=True,
            receive_maximum=max_unacked,
            maximum_packet_size=max_payload_bytes * PACKET_HEADROOM,
            on_message=self._on_message,
            on_publishes=self._on_publishes,
            room=self._room,
            will=will,
            on_connected=on_connected,
            name="mqtt",
        )
        self._stopping = False
        self.pending = 0
        """Messages delivered and not yet released by :meth:`ack` (of any connection)."""
        self.pending_bytes = 0
        """Their payload bytes (as delivered: an oversize payload counts its kept part)."""

    @property
    def intake_full(self) -> bool:
        """Whether reading is paused for flow control: nothing more arrives until acks free room."""
        return self.pending >= self._max_unacked or bool(
            self._max_unacked_bytes and self.pending_bytes >= self._max_unacked_bytes
        )

    @property
    def connected(self) -> asyncio.Event:
        """Set while the broker has accepted the connection."""
        return self.link.connected

    @property
    def subscribed(self) -> asyncio.Event:
        """Set once the broker acknowledged the subscriptions (SUBACK) of this connection."""
        return self.link.subscribed

    @property
    def connects(self) -> int:
        """Connections the broker accepted."""
        return self.link.connects

    @property
    def generation(self) -> int:
        """Number of connections ended so far: a message's ack is void after its connection ended."""
        return self.link.generation

    def _room(self) -> tuple[int, int]:
        """Messages and payload bytes that may arrive before reading pauses."""
        room_bytes = self._max_unacked_bytes - self.pending_bytes if self._max_unacked_bytes else 1 << 62
        return self._max_unacked - self.pending, room_bytes

    def _oversize(
        self, topic: str, payload: bytes | bytearray, received_ms: int, mid: int, qos: int, dup: bool
    ) -> Message:
        kept = bytes(payload[:MAX_DEAD_LETTER_RAW_BYTES])
        return Message(
            topic=topic,
            payload=kept,
            received_ms=received_ms,
            mid=mid,
            qos=qos,
            generation=self.link.generation,
            dup=dup,
            oversize_bytes=len(payload),
            size=len(kept),
        )

    def _on_publishes(self, batch: list[Publish]) -> None:
        received_ms = int(time.time() * 1000)
        generation = self.link.generation
        limit = self._max_payload or 1 << 62
        messages = []
        size = 0
        for topic, payload, mid, dup in batch:
            n = len(payload)
            if n > limit:
                msg = self._oversize(topic, payload, received_ms, mid, 1 if mid else 0, dup)
                n = msg.size
            else:
                msg = Message(
                    topic=topic,
                    payload=payload,
                    received_ms=received_ms,
                    mid=mid,
                    qos=1 if mid else 0,  # packet id 0: QoS 0
                    generation=generation,
                    dup=dup,
                    size=n,
                )
            messages.append(msg)
            size += n
        self.pending += len(messages)
        self.pending_bytes += size
        self._deliver(messages)
        if self.intake_full:
            self.link.pause_reading()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        ctype = None
        if self._v5 and msg.properties is not None:
            ctype = getattr(msg.properties, "ContentType", None)
        received_ms = int(time.time() * 1000)
        size = len(msg.payload)
        if self._max_payload and size > self._max_payload:
            message = self._oversize(msg.topic, msg.payload, received_ms, msg.mid, msg.qos, bool(msg.dup))
        else:
            message = Message(
                topic=msg.topic,
                payload=bytes(msg.payload),
                received_ms=received_ms,
                mid=msg.mid,
                qos=msg.qos,
                generation=self.link.generation,
                dup=bool(msg.dup),
                size=size,
            )
        message.content_type = ctype
        self.pending += 1
        self.pending_bytes += message.size
        self._deliver([message])
        if self.intake_full:
            self.link.pause_reading()

    def pause_intake(self) -> None:
        """Stop reading new messages (shutdown); acks still go out, no reconnect after a drop."""
        self._stopping = True
        self.link.reconnect = False
        self.link.pause_reading()

    def ack(self, messages: list[Message], size: int | None = None) -> None:
        """Acknowledge messages whose content is durably stored (or dead-lettered).

        ``size``: their :attr:`Message.size` summed, when the caller kept the sum.
        """
        self.pending -= len(messages)
        self.pending_bytes -= sum([m.size for m in messages]) if size is None else size
        if self.link.connected.is_set():
            generation = self.link.generation
            # Subscriptions are QoS 1, so the broker sends QoS 0 or 1: a QoS 0 message needs no ack.
            self.link.ack([m.mid for m in messages if m.generation == generation and m.qos == 1])
        if not self._stopping and not self.intake_full:
            self.link.resume_reading()

    async def run(self) -> None:
        """Connect, keep connected with capped jittered backoff, until cancelled or disconnected."""
        await self.link.run()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Publish (QoS 1 unless told) without waiting for the PUBACK; False while not connected."""
        if not self.link.connected.is_set():
            return False
        info = self.link.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def set_will(self, topic: str, payload: bytes) -> None:
        """The retained QoS 1 Last Will of the next connection."""
        self.link.client.will_set(topic, payload, qos=1, retain=True)

    async def disconnect(self) -> None:
        """Send the pending acks and a clean DISCONNECT (the session stays on the broker)."""
        self._stopping = True
        await self.link.close()
