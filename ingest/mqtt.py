"""MQTT intake: paho-mqtt driven by the asyncio event loop, QoS 1, persistent session, manual ack.

paho runs without its own thread: its socket is watched with ``loop.add_reader``/``add_writer``
and ``loop_misc`` runs once a second (the pattern of paho's ``loop_asyncio`` example, which
aiomqtt also uses). Messages are acknowledged only when the service calls :meth:`ack`, after the
sink has them. The number of unacknowledged messages is bounded twice: MQTT v5 tells the broker
our *Receive Maximum*, and whatever the protocol, reading from the socket pauses while
``max_unacked`` messages are outstanding.

Acknowledgements belong to one connection: after a reconnect the broker resends unacknowledged
messages, so acks for messages of an earlier connection are dropped and the resent copies (written
again, idempotently) are acked instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.limits import MAX_DEAD_LETTER_RAW_BYTES
from settings.common import BrokerSettings

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps our session (and queues messages for it) while we are away."""
_READS_PER_WAKEUP = 256
PACKET_HEADROOM = 4
"""MQTT v5: the broker is told a Maximum Packet Size of this many times ``max_payload_bytes``.
Payloads between the two are received and dead-lettered (the sender learns why); a larger
packet is discarded by the broker (MQTT v5 section 3.1.2.11.4) and never occupies our memory."""
_LOGIN_REFUSED = frozenset({4, 5, 0x86, 0x87, 0x8C})
"""CONNACK codes that mean the credentials: 3.1.1 bad user/password and not authorised; their v5 forms."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received message and what is needed to acknowledge it."""

    topic: str
    payload: bytes
    received_ms: int
    content_type: str | None
    mid: int
    qos: int
    generation: int
    dup: bool = False
    oversize_bytes: int = 0
    """The payload's size when it exceeded the consumer's limit; ``payload`` then holds only
    its first :data:`contract.limits.MAX_DEAD_LETTER_RAW_BYTES` bytes (for the dead letter)."""


def backoff_delays(min_s: float, max_s: float, rng: random.Random | None = None) -> Callable[[int], float]:
    """Capped exponential backoff with full jitter: ``delay(attempt)`` for attempt 0, 1, 2, ..."""
    r = rng or random.Random()

    def delay(attempt: int) -> float:
        return float(min(max_s, min_s * 2 ** min(attempt, 30)) * (0.5 + r.random() / 2))

    return delay


class MqttConsumer:
    """Subscribes to topic filters and hands messages to ``deliver``.

    Args:
        broker: connection settings.
        client_id: fixed client id; the persistent session is kept under it.
        filters: topic filters (QoS 1), shared subscriptions allowed with MQTT v5.
        max_unacked: bound on received-but-unacknowledged messages.
        deliver: called in the event loop for every message.
        max_payload_bytes: larger payloads are delivered cut to their first bytes, with
            ``oversize_bytes`` set, and never copied (0: no limit).
        delay: reconnect delay by attempt (injectable for tests).
    """

    def __init__(
        self,
        *,
        broker: BrokerSettings,
        client_id: str,
        filters: list[str],
        max_unacked: int,
        deliver: Callable[[Message], None],
        delay: Callable[[int], float] | None = None,
        max_payload_bytes: int = 0,
    ) -> None:
        self._broker = broker
        self._filters = filters
        self._max_unacked = max_unacked
        self._deliver = deliver
        self._max_payload = max_payload_bytes
        self._delay = delay or backoff_delays(broker.reconnect_min_s, broker.reconnect_max_s)
        self._v5 = broker.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self._v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password or None)
        if broker.tls is not None:
            self._setup_tls()
        c = self._client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._reading = False
        self._paused = False
        self._stopping = False
        self.generation = 0
        self.pending = 0
        """Messages delivered and not yet released by :meth:`ack` (of any connection)."""
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._disconnected = asyncio.Event()
        self.connects = 0
        self._refusals = 0
        """CONNACKs in a row that refused us (reset by an accepted one)."""
        self._was_connected = False
        # connect() blocks the loop for the TCP handshake; bound it (a LAN/loopback broker answers
        # in milliseconds, an unreachable one costs at most this per attempt).
        self._client.connect_timeout = 5.0

    def _setup_tls(self) -> None:
        tls = self._broker.tls
        assert tls is not None
        self._client.tls_set(
            ca_certs=tls.ca_file or None,
            certfile=tls.cert_file or None,
            keyfile=tls.key_file or None,
        )
        if tls.insecure_skip_verify:
            self._client.tls_insecure_set(True)

    # -- paho callbacks (all run in the event loop thread) --

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            self._refusals += 1
            b = self._broker
            if rc.value in _LOGIN_REFUSED:
                user = repr(b.username) if b.username else "no user name (anonymous)"
                log.error(
                    "broker %s:%d refused the login for %s (%s, refusal %d): check [broker] username and "
                    "password (or PARKWATCH_BROKER__USERNAME / PARKWATCH_BROKER__PASSWORD) against the "
                    "broker's password file; retrying with backoff until it accepts them",
                    b.host,
                    b.port,
                    user,
                    rc,
                    self._refusals,
                )
            else:
                log.error(
                    "broker %s:%d refused the connection (%s, refusal %d); retrying with backoff",
                    b.host,
                    b.port,
                    rc,
                    self._refusals,
                )
            return
        self._refusals = 0
        self.connects += 1
        self._was_connected = True
        log.info(
            "connected to %s:%d as %s (session present: %s); subscribing",
            self._broker.host,
            self._broker.port,
            client._client_id.decode(),
            flags.session_present,
        )
        client.subscribe([(f, 1) for f in self._filters])
        self.connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        bad = [str(r) for r in rcs if r.is_failure]
        if bad:
            log.error(
                "subscription refused by the broker: %s (check the ACL and filters %s)", bad, self._filters
            )
        else:
            log.info("subscribed (SUBACK) to %s: receiving", ", ".join(self._filters))
        self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self._disconnected.set()
        if not self._stopping and not self._refusals:  # a refused CONNACK was explained already
            log.warning("disconnected from the broker: %s", rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ctype = None
        if self._v5 and msg.properties is not None:
            ctype = getattr(msg.properties, "ContentType", None)
        self.pending += 1
        size = len(msg.payload)
        oversize = size if self._max_payload and size > self._max_payload else 0
        self._deliver(
            Message(
                topic=msg.topic,
                payload=bytes(msg.payload[:MAX_DEAD_LETTER_RAW_BYTES]) if oversize else bytes(msg.payload),
                received_ms=int(time.time() * 1000),
                content_type=ctype,
                mid=msg.mid,
                qos=msg.qos,
                generation=self.generation,
                dup=bool(msg.dup),
                oversize_bytes=oversize,
            )
        )
        if self.pending >= self._max_unacked:
            self._pause()

    def _on_socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._sock = sock
        if self.pending < self._max_unacked:
            self._resume()
        else:
            self._paused = True

    def _on_socket_close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        assert self._loop is not None
        if self._reading:
            self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._reading = False
        self._sock = None

    def _on_register_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_writer(sock)

    # -- flow control --

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(_READS_PER_WAKEUP):
            if self._client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._paused:
                return
            sock = self._sock
            if sock is None:
                return
            if isinstance(sock, ssl.SSLSocket):
                if not sock.pending():
                    return
            else:
                try:
                    if not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                        return
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return  # paho's next read reports the broken connection

    def _pause(self) -> None:
        self._paused = True
        if self._reading and self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)
            self._reading = False

    def _resume(self) -> None:
        self._paused = False
        if not self._reading and self._sock is not None and self._loop is not None and not self._stopping:
            self._loop.add_reader(self._sock, self._readable)
            self._reading = True

    def pause_intake(self) -> None:
        """Stop reading new messages (shutdown); acks still go out."""
        self._stopping = True
        self._pause()

    def ack(self, messages: list[Message]) -> None:
        """Acknowledge messages whose content is durably stored (or dead-lettered)."""
        generation = self.generation
        for m in messages:
            self.pending -= 1
            if m.qos and m.generation == generation and self._sock is not None:
                self._client.ack(m.mid, m.qos)
        if self._paused and not self._stopping and self.pending < self._max_unacked:
            self._resume()

    # -- connection loop --

    async def run(self) -> None:
        """Connect, keep connected with capped jittered backoff, until cancelled."""
        self._loop = asyncio.get_running_loop()
        attempt = 0
        misc = asyncio.create_task(self._misc_loop(), name="mqtt-misc")
        try:
            while True:
                self._disconnected.clear()
                try:
                    await self._open()
                except (OSError, ssl.SSLError, mqtt.WebsocketConnectionError) as exc:
                    wait = self._delay(attempt)
                    attempt += 1
                    log.warning(
                        "broker %s:%d unreachable (%s); retrying in %.1fs",
                        self._broker.host,
                        self._broker.port,
                        exc,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    continue
                await self._disconnected.wait()
                if self._stopping:
                    return
                self.generation += 1
                attempt = 0 if self._was_connected else attempt + 1
                self._was_connected = False
                await asyncio.sleep(self._delay(attempt))
        finally:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc

    async def _open(self) -> None:
        """Start a connection; CONNACK and the rest arrive through the socket callbacks."""
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self._max_unacked
            if self._max_payload:
                props.MaximumPacketSize = self._max_payload * PACKET_HEADROOM
        rc = self._client.connect(
            self._broker.host,
            self._broker.port,
            self._broker.keepalive_s,
            clean_start=False if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise OSError(f"connect failed: {mqtt.error_string(rc)}")

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._sock is not None:
                self._client.loop_misc()

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish with QoS 1 without waiting for the PUBACK; False while not connected."""
        if self._sock is None or not self.connected.is_set():
            return False
        return self._client.publish(topic, payload, qos=1).rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def disconnect(self) -> None:
        """Send the pending acks and a clean DISCONNECT (the session stays on the broker)."""
        self._stopping = True
        if self._sock is None:
            return
        self._client.disconnect()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._disconnected.wait()
