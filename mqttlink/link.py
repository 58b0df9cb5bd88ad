"""paho-mqtt driven by the asyncio event loop: client set-up, TLS, connect/reconnect, backoff.

paho runs without its own network thread. Its socket is watched with ``loop.add_reader`` /
``add_writer`` (paho's socket callbacks) and ``loop_misc`` runs once a second for keepalive
PINGREQs and their timeout: the pattern of paho's ``loop_asyncio`` example, which aiomqtt also
uses. Only the blocking TCP/TLS connect runs in a worker thread, so a slow handshake never stalls
the event loop; callbacks paho makes from that thread are handed to the loop.

:class:`MqttLink` owns one connection: it connects, subscribes after every CONNACK, tells its
owner through events (``connected``, ``subscribed``, ``lost``), reconnects with one capped,
jittered exponential backoff, and explains refused logins. What a connection is *for* stays
with its owner: the edge publisher keeps its PUBACK futures (``edge_agent.publisher``), the
ingester's consumer its manual acks and flow control (``ingest.mqtt``). The edge doctor builds
its blocking client with :func:`make_client` and :func:`tls_context` from here.

TLS (``[broker.tls]``) verifies the broker's certificate against ``ca_file`` (or the system
trust store) and its host name against ``[broker] host``. ``insecure_skip_verify = true`` turns
off both, for a test broker with a self-made certificate only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from settings.common import BrokerSettings, TlsSettings

log = logging.getLogger(__name__)

Backoff = Callable[[int], float]
"""A function from the attempt number (1, 2, ...) to the delay in seconds before it."""

LOGIN_REFUSED: Final = frozenset({4, 5, 0x86, 0x87, 0x8C})
"""CONNACK codes that mean the credentials: 3.1.1 bad user/password and not authorised; their v5 forms."""

_MISC_INTERVAL_S: Final = 1.0
_READS_PER_WAKEUP: Final = 256
_READ_CHUNK_BYTES: Final = 65536
_PUBACK: Final = 0x40
_TOPIC_NAMES_MAX: Final = 100_000

Publish = tuple[str, bytes, int, bool]
"""A received QoS 0 or 1 PUBLISH without properties: ``(topic, payload, packet id, dup)``; the
packet id is 0 for QoS 0 (a QoS 1 packet id is 1-65535)."""


def _no_bound() -> tuple[int, int]:
    return 1 << 30, 1 << 62


def jittered_backoff(min_s: float, max_s: float, *, rng: random.Random | None = None) -> Backoff:
    """Capped exponential backoff with jitter: attempt n (1, 2, ...) waits uniformly in [d/2, d]
    with d = min(max_s, min_s * 2**(n-1)); attempt 0 counts as 1."""
    r = rng or random.Random()

    def delay(attempt: int) -> float:
        d: float = min(max_s, min_s * 2.0 ** max(0, min(attempt - 1, 30)))
        return d / 2 + r.random() * d / 2

    return delay


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """The TLS context for ``[broker.tls]``: certificate and host name verified unless
    ``insecure_skip_verify``; a client certificate when ``cert_file`` is set.

    Raises:
        OSError: a named file cannot be read.
        ssl.SSLError: a named file is not a certificate or key.
    """
    ctx = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _topic_name(raw: bytes) -> str:
    # MQTT requires UTF-8 topic names (brokers check them); a broken one is shown with
    # replacement characters, so that its receiver can dead-letter it instead of failing.
    return raw.decode("utf-8", "replace")


class _TopicNames(dict[bytes, str]):
    """Topic names by their bytes, decoded once (bounded: a fleet has a bounded set of topics)."""

    def __missing__(self, raw: bytes) -> str:
        if len(self) >= _TOPIC_NAMES_MAX:
            self.clear()
        name = self[raw] = _topic_name(raw)
        return name


def cut_publishes(
    buf: bytes,
    pos: int,
    *,
    v5: bool,
    max_messages: int,
    max_payload_bytes: int,
    topic_name: Callable[[bytes], str] = _topic_name,
) -> tuple[list[Publish], int, bool]:
    """Cut the complete QoS 0 and 1 PUBLISH packets (MQTT v5: without properties) from ``buf[pos:]``.

    Stops at the first packet that is incomplete or not such a PUBLISH, after ``max_messages``
    publishes, or once their payloads reach ``max_payload_bytes`` (the one that crosses it
    included). Returns the publishes, the position after the last one, and whether it stopped at
    an incomplete packet that starts like a QoS 0 or 1 PUBLISH of at most 64 KiB (the caller
    reads more and tries again). ``topic_name`` turns a topic's bytes into its name.
    """
    out: list[Publish] = []
    append = out.append
    end = len(buf)
    props = 1 if v5 else 0  # v5: the property length byte (0: none; else paho decodes them)
    room = max_messages
    taken_bytes = 0
    while pos < end and room > 0 and taken_bytes < max_payload_bytes:
        header = buf[pos]
        qos1 = header & 0x06
        if header & 0xF0 != 0x30 or qos1 > 2:  # PUBLISH (0x30) with QoS 0 or 1 (bits 1-2)
            break
        # Remaining length: 1-4 bytes, 7 bits each, least significant first; small packets
        # (below 16 KiB: one or two bytes) without the loop.
        i = pos + 2
        if i < end and (length := buf[pos + 1]) < 0x80:
            pass
        elif i < end and buf[i] < 0x80:
            length = (length & 0x7F) | buf[i] << 7
            i += 1
        else:
            i = pos + 1
            length = 0
            shift = 0
            while i < end and shift < 28:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            else:
                return out, pos, i >= end  # incomplete (or malformed: paho reports it)
        packet_end = i + length
        if packet_end > end:
            # Incomplete: worth completing here unless it is big (paho reads that into one
            # growing buffer instead of having its start copied again with every read).
            return out, pos, length <= _READ_CHUNK_BYTES
        topic_end = i + 2 + (buf[i] << 8 | buf[i + 1]) if length >= 2 else packet_end + 1
        payload_start = topic_end + qos1 + props  # QoS 1: a 2-byte packet id after the topic
        if payload_start > packet_end or (props and buf[payload_start - 1]):
            break  # with properties (or malformed): paho's path
        payload = buf[payload_start:packet_end]
        append(
            (
                topic_name(buf[i + 2 : topic_end]),
                payload,
                buf[topic_end] << 8 | buf[topic_end + 1] if qos1 else 0,
                header & 0x08 != 0,
            )
        )
        room -= 1
        taken_bytes += packet_end - payload_start
        pos = packet_end
    return out, pos, False


class BufferedClient(mqtt.Client):
    """A paho client with a cheaper receive path, for callers that drive its reads themselves.

    - It reads its socket in chunks of up to 64 KiB: paho reads a packet with one ``recv`` for
      its type byte, one per length byte and one for the rest (four system calls for a small
      message). Bytes in the buffer are invisible to ``select``, so only a caller that checks
      :attr:`buffered` may use it (:class:`MqttLink` does; paho's own blocking loop does not).
    - With :attr:`on_publishes` set (and manual acks), a QoS 0 or 1 PUBLISH without properties
      (MQTT v5) or any QoS 0 or 1 PUBLISH (3.1.1) never becomes a paho ``MQTTMessage`` (an object
      with its own lock and condition per message): :meth:`take_publishes` cuts every complete
      one at the head of the buffer into a :data:`Publish` tuple, and a lone one that paho reads
      itself is handed over the same way, so the owner gets one call per read, not per message.
      A PUBLISH with properties or of QoS 2, or another packet type, takes paho's path.
    - PUBACKs queued together are written with one ``send``.

    It overrides paho's private ``_sock_recv``, ``_sock_close``, ``_handle_publish`` and
    ``_packet_write`` and reads and resets ``_in_packet``, ``_last_bytes_received``; paho's
    version is pinned and the MQTT tests run through this class against Mosquitto.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chunk = b""
        self._chunk_pos = 0
        self._filtered = False
        self._topic_names = _TopicNames()
        self._deferred: BaseException | bytes | None = None
        self._short = False
        """The buffer ends in the first part of a small PUBLISH: :meth:`fill` appends to it."""
        self.on_publishes: Callable[[list[Publish]], None] | None = None
        """Takes QoS 0 and 1 publishes (manual ack) in batches instead of ``on_message`` one by one."""

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    @property
    def buffered(self) -> int:
        """Bytes received from the socket that paho has not read yet."""
        return len(self._chunk) - self._chunk_pos

    @property
    def short(self) -> bool:
        """Whether :meth:`take_publishes` stopped at a small PUBLISH whose end is still to come."""
        return self._short

    def fill(self) -> bool | None:
        """Read the socket (up to 64 KiB) into the buffer if it is empty (or holds only the
        start of a small PUBLISH, see :meth:`take_publishes`), between packets.

        Returns True when bytes are buffered, None when the socket has nothing now, False when
        paho must read (it is in the middle of a packet; or the connection was closed or broke,
        which is kept for paho's next read to report).
        """
        if self._chunk_pos < len(self._chunk) and not self._short:
            return True
        if self._in_packet["command"] or self._sock is None or self._deferred is not None:
            return False
        try:
            data: bytes = super()._sock_recv(_READ_CHUNK_BYTES)
        except BlockingIOError:
            return None
        except OSError as exc:
            self._deferred = exc
            return False
        if not data:
            self._deferred = data
            return False
        if self._short:
            data = self._chunk[self._chunk_pos :] + data
            self._short = False
        self._chunk, self._chunk_pos = data, 0
        return True

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            if isinstance(deferred, BaseException):
                raise deferred
            return deferred
        pos = self._chunk_pos
        if pos >= len(self._chunk):
            data: bytes = super()._sock_recv(max(bufsize, _READ_CHUNK_BYTES))
            if len(data) <= bufsize:
                return data  # all of it wanted (b"": the connection was closed)
            self._chunk, pos = data, 0
        self._chunk_pos = pos + bufsize
        return self._chunk[pos : pos + bufsize]

    def _sock_close(self) -> None:
        self._chunk, self._chunk_pos = b"", 0  # what was left belongs to the closed connection
        self._deferred = None
        self._short = False
        super()._sock_close()

    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages (manual ack): their PUBACKs queued as one packet.

        The bytes are paho's own PUBACK (``40 02`` and the packet id; MQTT v5 allows leaving out
        a success reason code), without a Python call chain and a debug-log call per message.
        """
        if mids:
            data = b"".join([b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids])
            self._packet_queue(_PUBACK, data, 0, 0)

    def _packet_write(self) -> MQTTErrorCode:
        # Acks queued since the last write go out in one send (one system call, not one each).
        queue = self._out_packet
        if len(queue) > 1 and queue[0]["command"] == _PUBACK and queue[0]["pos"] == 0:
            acks = []
            while queue and queue[0]["command"] == _PUBACK and queue[0]["pos"] == 0:
                acks.append(queue.popleft()["packet"])
            data = b"".join(acks)
            queue.appendleft(
                {
                    "command": _PUBACK,
                    "mid": 0,
                    "qos": 0,
                    "pos": 0,
                    "to_process": len(data),
                    "packet": data,
                    "info": None,
                }
            )
        rc: MQTTErrorCode = super()._packet_write()
        return rc

    def take_publishes(self, max_messages: int, max_payload_bytes: int) -> list[Publish]:
        """The complete QoS 0 and 1 PUBLISH packets at the head of the read buffer, as tuples
        (:func:`cut_publishes`); paho reads whatever they stop at.

        Empty unless :attr:`on_publishes` is set, acks are manual and paho is not in the middle
        of a packet.
        """
        self._short = False
        if self.on_publishes is None or self._filtered or not self._manual_ack or self._in_packet["command"]:
            return []
        if self._protocol not in (mqtt.MQTTv5, mqtt.MQTTv311):
            return []
        out, self._chunk_pos, self._short = cut_publishes(
            self._chunk,
            self._chunk_pos,
            v5=self._protocol == mqtt.MQTTv5,
            max_messages=max_messages,
            max_payload_bytes=max_payload_bytes,
            topic_name=self._topic_names.__getitem__,
        )
        if out:
            self._last_bytes_received = time.monotonic()  # paho's keepalive clock (time_func)
        return out

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        packet: bytearray = self._in_packet["packet"]
        v5 = self._protocol == mqtt.MQTTv5
        batched = self.on_publishes is not None and not self._filtered
        if batched and header & 0x06 == 0 and self._manual_ack:
            # QoS 0 (a lone one paho read itself): no packet id.
            end = 2 + int.from_bytes(packet[0:2], "big")
            if len(packet) < end + v5 or (v5 and packet[end] != 0) or self.on_publishes is None:
                return super()._handle_publish()
            raw = bytes(packet[2:end])
            self.on_publishes([(self._topic_names[raw], bytes(packet[end + v5 :]), 0, header & 0x08 != 0)])
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        if header & 0x06 != 0x02 or not self._manual_ack or not (v5 or batched):
            return super()._handle_publish()
        # Variable header: topic (length-prefixed), packet id, property length (v5; 0: none).
        end = 2 + int.from_bytes(packet[0:2], "big")
        if len(packet) < end + 2 + v5 or (v5 and packet[end + 2] != 0):
            return super()._handle_publish()
        mid = int.from_bytes(packet[end : end + 2], "big")
        if batched and self.on_publishes is not None:
            raw = bytes(packet[2:end])
            topic = self._topic_names[raw]
            self.on_publishes([(topic, bytes(packet[end + 2 + v5 :]), mid, header & 0x08 != 0)])
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        message = mqtt.MQTTMessage(mid=mid, topic=bytes(packet[2:end]))
        message.dup = bool(header & 0x08)
        message.qos = 1
        message.retain = bool(header & 0x01)
        message.payload = bytes(packet[end + 3 :])
        message.timestamp = time.monotonic()
        on_message = self.on_message
        if self._filtered or on_message is None:
            self._handle_on_message(message)
        else:
            # paho would first match the topic against the (empty) per-filter callbacks.
            on_message(self, self._userdata, message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def make_client(
    broker: BrokerSettings,
    *,
    client_id: str,
    clean: bool = False,
    manual_ack: bool = False,
    buffered: bool = False,
) -> mqtt.Client:
    """A paho client configured from ``broker``: protocol, credentials, TLS.

    ``clean`` is the MQTT 3.1.1 clean-session flag (MQTT 5 connects with ``clean_start=False``,
    see :func:`open_connection`); ``manual_ack`` leaves QoS 1 acknowledgements to the caller;
    ``buffered`` makes a :class:`BufferedClient` (for callers that drive the reads themselves).
    """
    v5 = broker.protocol == "5"
    client = (BufferedClient if buffered else mqtt.Client)(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else clean,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password or None)
    if broker.tls is not None:
        client.tls_set_context(tls_context(broker.tls))
    return client


def connect_properties(
    broker: BrokerSettings,
    *,
    session_expiry_s: int,
    receive_maximum: int = 0,
    maximum_packet_size: int = 0,
) -> Properties | None:
    """MQTT 5 CONNECT properties (0: not sent); None for 3.1.1."""
    if broker.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    if maximum_packet_size:
        props.MaximumPacketSize = maximum_packet_size
    return props


def open_connection(client: mqtt.Client, broker: BrokerSettings, properties: Properties | None) -> None:
    """Blocking TCP/TLS connect and CONNECT, keeping the session (no clean start on MQTT 5)."""
    rc = client.connect(
        broker.host,
        broker.port,
        keepalive=broker.keepalive_s,
        clean_start=False if broker.protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
    )
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise OSError(f"connect failed: {mqtt.error_string(rc)}")


def refusal_hint(broker: BrokerSettings, rc: ReasonCode) -> str:
    """Why the broker refused a CONNECT and what to do about it."""
    where = f"broker {broker.host}:{broker.port}"
    if rc.value in LOGIN_REFUSED:
        user = repr(broker.username) if broker.username else "no user name (anonymous)"
        return (
            f"{where} refused the login for {user} ({rc}): check [broker] username and password (or "
            "PARKWATCH_BROKER__USERNAME / PARKWATCH_BROKER__PASSWORD) against the broker's password file"
        )
    return f"{where} refused the connection ({rc})"


def _connect_error(broker: BrokerSettings, exc: BaseException) -> str:
    text = f"cannot connect to {broker.host}:{broker.port}: {exc or type(exc).__name__}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        text += (
            " (set [broker.tls] ca_file to the CA that signed the broker certificate and [broker] host"
            " to a name in it; insecure_skip_verify = true skips both checks, for tests only)"
        )
    return text


class MqttLink:
    """One MQTT connection on the running event loop, reconnected until :meth:`close`.

    Args:
        broker: where and how to connect.
        client_id: fixed client id; the persistent session is kept under it.
        session_expiry_s: MQTT 5 session expiry.
        subscriptions: ``(filter, qos)`` subscribed after every CONNACK; ``subscribed`` is set
            on the SUBACK.
        backoff: delay before reconnect attempt n (default from ``broker.reconnect_min_s/max_s``).
        connect_timeout_s: how long one TCP/TLS connect plus CONNACK may take.
        manual_ack: QoS 1 messages are acknowledged by the owner (``client.ack``).
        receive_maximum, maximum_packet_size: MQTT 5 CONNECT properties (0: not sent).
        will: ``(topic, payload)`` of a retained QoS 1 Last Will.
        max_inflight: QoS 1 messages on the wire without PUBACK (0: paho's default).
        on_connected: called on the loop after every accepted CONNACK.
        on_message: called on the loop for every received message.
        on_publishes: with ``manual_ack``, called on the loop with the QoS 0 and 1 messages
            without properties (:data:`Publish`), a batch per read; the rest go to ``on_message``.
        room: how many more messages and payload bytes ``on_publishes`` may take before its
            owner pauses reading (flow control; default: no bound).
        on_publish: called on the loop with ``(mid, reason_code)`` for every PUBACK.
        name: names the background tasks and log lines.
    """

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        client_id: str,
        session_expiry_s: int,
        subscriptions: Sequence[tuple[str, int]] = (),
        backoff: Backoff | None = None,
        connect_timeout_s: float = 10.0,
        manual_ack: bool = False,
        receive_maximum: int = 0,
        maximum_packet_size: int = 0,
        will: tuple[str, bytes] | None = None,
        max_inflight: int = 0,
        on_connected: Callable[[], None] | None = None,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        on_publishes: Callable[[list[Publish]], None] | None = None,
        room: Callable[[], tuple[int, int]] | None = None,
        on_publish: Callable[[int, ReasonCode], None] | None = None,
        name: str = "mqtt",
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.name = name
        self.subscriptions = list(subscriptions)
        client = make_client(broker, client_id=client_id, manual_ack=manual_ack, buffered=True)
        assert isinstance(client, BufferedClient)
        self.client: mqtt.Client = client
        self._buffer = client
        client.on_publishes = on_publishes if manual_ack else None
        self._room = room or _no_bound
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        if max_inflight:
            self.client.max_inflight_messages_set(max_inflight)
        self._properties = connect_properties(
            broker,
            session_expiry_s=session_expiry_s,
            receive_maximum=receive_maximum,
            maximum_packet_size=maximum_packet_size,
        )
        self._backoff = backoff or jittered_backoff(broker.reconnect_min_s, broker.reconnect_max_s)
        self._connect_timeout_s = connect_timeout_s
        self._on_connected = on_connected
        self._on_message_cb = on_message
        self._on_publish_cb = on_publish
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._fd: int | None = None
        self._sock: Any = None
        self._reading = False
        self._paused = False
        self._closing = False
        self._closed = asyncio.Event()
        self._connack: asyncio.Future[ReasonCode] | None = None
        self.reconnect = True
        """Whether :meth:`run` reconnects after the connection drops (False: it returns)."""
        self.connected = asyncio.Event()
        """Set while the broker has accepted the connection."""
        self.subscribed = asyncio.Event()
        """Set once the broker acknowledged this connection's subscriptions (SUBACK)."""
        self.lost = asyncio.Event()
        """Set while there is no connection (before the first, after a drop, after close)."""
        self.lost.set()
        self.connects = 0
        self.disconnects = 0
        self.refusals = 0
        """CONNACKs in a row that refused us (reset by an accepted one)."""
        self.generation = 0
        """Incremented whenever a connection ends: acks of an earlier connection are void."""
        self.last_error = ""
        """Why the last connect attempt failed (empty after a successful connect)."""

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    async def wait_connected(self) -> bool:
        """Wait until connected (True) or closed (False)."""
        while not self.connected.is_set() and not self._closing:
            waits = [asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self._closed.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        return not self._closing

    # ------------------------------------------------------------------ connection loop

    async def run(self) -> None:
        """Connect, keep the connection alive and reconnect until :meth:`close` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        misc = asyncio.create_task(self._misc_loop(), name=f"{self.name}-misc")
        attempt = 0
        try:
            while not self._closing:
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                    if self._closing:
                        break
                if await self._connect_once():
                    attempt = 0
                    await self.lost.wait()
                    if not self.reconnect:
                        return
                attempt += 1
        finally:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc

    async def close(self, *, timeout_s: float = 5.0, properties: Properties | None = None) -> None:
        """Send a clean DISCONNECT (the session stays on the broker unless ``properties`` end it)
        and stop reconnecting."""
        if self._closing:
            return
        self._closing = True
        if self.connected.is_set():
            self.client.disconnect(properties=properties)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self.lost.wait()
        self.connected.clear()
        self.lost.set()
        self._remove_fd()
        self._closed.set()

    async def _connect_once(self) -> bool:
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self.lost.clear()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await asyncio.to_thread(open_connection, self.client, self.broker, self._properties)
                rc = await self._connack
        except (OSError, TimeoutError, ValueError) as exc:
            self.last_error = _connect_error(self.broker, exc)
            log.warning("%s %s: %s; retrying with backoff", self.name, self.client_id, self.last_error)
            self._remove_fd()
            self.lost.set()
            return False
        if rc.is_failure:
            self.refusals += 1
            self.last_error = refusal_hint(self.broker, rc)
            log.error(
                "%s %s: %s (refusal %d); retrying with backoff until it accepts",
                self.name,
                self.client_id,
                self.last_error,
                self.refusals,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self.lost.wait()
            return False
        self.refusals = 0
        self.last_error = ""
        return True

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if self._fd is not None:
                self.client.loop_misc()

    # ------------------------------------------------------------------ reading and flow control

    def ack(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages of the current connection (manual ack) in one write."""
        self._buffer.ack_many(mids)

    def pause_reading(self) -> None:
        """Stop reading from the socket (messages, and CONNACKs, wait in the kernel buffer)."""
        self._paused = True
        if self._reading and self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def resume_reading(self) -> None:
        """Read from the socket again."""
        self._paused = False
        if not self._reading and self._fd is not None and self._loop is not None and not self._closing:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True
            if self._buffer.buffered:
                # Packets already in the client's buffer raise no readiness event.
                self._loop.call_soon(self._readable)

    def _readable(self) -> None:
        # Read what is buffered in one wakeup (up to a bound), not one packet per wakeup.
        client = self._buffer
        deliver = client.on_publishes
        for _ in range(_READS_PER_WAKEUP):
            if self._paused or self._fd is None:
                return
            if deliver is not None:
                filled = client.fill()
                if filled is None:
                    return  # nothing more to read now
                if filled:
                    # Every complete small PUBLISH of the buffer in one call; paho reads the rest.
                    batch = client.take_publishes(*self._room())
                    if batch:
                        deliver(batch)
                        continue
                    if client.short:
                        continue  # the next fill appends the rest of the packet
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._paused:
                return
            if client.buffered:
                continue
            sock = self._sock
            if sock is None or self._fd is None:
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
        else:
            if self._buffer.buffered and self._loop is not None:
                self._loop.call_soon(self._readable)  # the rest raises no readiness event

    # ------------------------------------------------------------------ paho callbacks

    def _in_loop(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        fd: int = sock.fileno()

        def add() -> None:
            if self.client.socket() is not sock:
                return
            self._remove_fd()
            self._fd = fd
            self._sock = sock
            if not self._paused:
                self.resume_reading()

        self._in_loop(add)

    def _on_socket_close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()

        def remove() -> None:
            if self._fd == fd:
                self._remove_fd()

        # Removal must happen before the descriptor is closed and possibly reused.
        self._in_loop(remove)

    def _remove_fd(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._sock = None
        self._reading = False

    def _on_register_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        def add() -> None:
            if self._fd is not None and self.client.socket() is sock and self._loop is not None:
                self._loop.add_writer(self._fd, self.client.loop_write)

        self._in_loop(add)

    def _on_unregister_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        def remove() -> None:
            if self._fd is not None and self._loop is not None:
                self._loop.remove_writer(self._fd)

        self._in_loop(remove)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)
        if rc.is_failure:
            return
        self.connects += 1
        log.info(
            "%s %s connected to %s:%d (session present: %s)",
            self.name,
            self.client_id,
            self.broker.host,
            self.broker.port,
            getattr(flags, "session_present", None),
        )
        if self.subscriptions:
            client.subscribe(self.subscriptions)
        self.connected.set()
        if self._on_connected is not None:
            self._on_connected()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        filters = [f for f, _ in self.subscriptions]
        bad = [str(r) for r in rcs if r.is_failure]
        if bad:
            log.error("subscription refused by the broker: %s (check the ACL and filters %s)", bad, filters)
        else:
            log.info("subscribed (SUBACK) to %s: receiving", ", ".join(filters))
        self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        def lost() -> None:
            if self.connected.is_set():
                self.disconnects += 1
                if not self._closing:
                    log.warning("%s %s lost the connection: %s", self.name, self.client_id, rc)
            self.connected.clear()
            self.subscribed.clear()
            self.generation += 1
            self.lost.set()
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(rc)

        self._in_loop(lost)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            self._on_message_cb(msg)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        if self._on_publish_cb is not None:
            self._on_publish_cb(mid, rc)
