"""MQTT publisher of one gateway: QoS 1 batches that return only after the broker's PUBACK.

Usable on its own (the simulator's fleet mode runs many of these, one per virtual gateway)::

    from contract import Batch, Status
    from settings import BrokerSettings
    from edge_agent.publisher import Publisher

    pub = Publisher(BrokerSettings(host="127.0.0.1", port=1883), park="hp-deep-c", gateway="gw-01")
    await pub.start()                        # connects in the background, reconnects forever
    await pub.wait_connected(timeout_s=10)     # optional
    await pub.publish_batch(batch)           # returns after PUBACK (raises PublishRejected on MQTT 5 error)
    await pub.publish_status(status)         # retained, QoS 1
    await pub.aclose()                       # publishes a retained "offline" status, then disconnects

or ``async with Publisher(...) as pub: ...``; or run :meth:`Publisher.run` inside your own
``asyncio.TaskGroup`` instead of :meth:`start`.

What it does for you:

* MQTT 3.1.1 or 5 (``broker.protocol``), TLS (``broker.tls``), username/password.
* A persistent session: ``clean_session=False`` (3.1.1) or ``clean_start=False`` plus a session
  expiry (5), under a fixed client id (``broker.client_id`` or ``pw-edge-<gateway>``).
* Last Will on the status topic: the contract ``Status`` ``offline``, retained, QoS 1.
* A retained birth status on every (re)connect, built by the ``birth`` callback if given.
* Reconnect with capped, jittered exponential backoff (``broker.reconnect_min_s/max_s``, or an
  injected ``backoff`` function).
* Messages published while the link is down, or unacknowledged when it dropped, are resent by
  the MQTT client after the reconnect (with DUP set); :meth:`publish_batch` keeps waiting for
  their PUBACK meanwhile. A batch keeps its ``seq`` on every resend.
* Down-link messages (``down/config``, ``down/command``, ``down/confirm``) go to the
  ``on_down(channel, payload)`` callback, called on the event loop.

paho-mqtt runs on the asyncio loop itself (socket callbacks, no network thread); only the
blocking TCP/TLS connect runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from contract.codec import encode
from contract.limits import MAX_PAYLOAD_BYTES
from contract.messages import Batch, Status
from contract.topics import topic_for
from edge_agent.backoff import Backoff, jittered_backoff
from edge_agent.errors import NotConnectedError, PermanentError, PublishRejected
from edge_agent.mqtt_client import connect_properties, make_client
from settings.common import BrokerSettings

log = logging.getLogger(__name__)

DownChannel = Literal["config", "command", "confirm"]
_MISC_INTERVAL_S: Final = 1.0


class Publisher:
    """One gateway's MQTT connection (see the module docstring for the API).

    Args:
        broker: where and how to connect.
        park, gateway: the gateway's identity; they name its topics.
        client_id: MQTT client id (default ``broker.client_id`` or ``pw-edge-<gateway>``).
        session_expiry_s: MQTT 5 session expiry.
        max_inflight: QoS 1 messages on the wire without PUBACK (the client queues the rest).
        backoff: delay before reconnect attempt n (default from ``broker.reconnect_min_s/max_s``).
        birth: builds the ``online`` status published (retained) after every connect.
        on_down: receives ``(channel, payload)`` of down-link messages; None: no subscription.
        connect_timeout_s: how long one TCP/TLS connect plus CONNACK may take.
    """

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        park: str,
        gateway: str,
        client_id: str | None = None,
        session_expiry_s: int = 7 * 24 * 3600,
        max_inflight: int = 20,
        backoff: Backoff | None = None,
        birth: Callable[[], Status] | None = None,
        on_down: Callable[[DownChannel, bytes], None] | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.broker = broker
        self.park = park
        self.gateway = gateway
        self.client_id = client_id or broker.client_id or f"pw-edge-{gateway}"
        root = broker.topic_root
        self.telemetry_topic = topic_for(park, gateway, "telemetry", root=root)
        self.status_topic = topic_for(park, gateway, "status", root=root)
        self.config_topic = topic_for(park, gateway, "config", root=root)
        self.command_topic = topic_for(park, gateway, "command", root=root)
        self.confirm_topic = topic_for(park, gateway, "confirm", root=root)
        self._session_expiry_s = session_expiry_s
        self._backoff = backoff or jittered_backoff(broker.reconnect_min_s, broker.reconnect_max_s)
        self._birth = birth
        self._on_down = on_down
        self._connect_timeout_s = connect_timeout_s
        self._client = make_client(broker, client_id=self.client_id)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.will_set(
            self.status_topic, encode(Status(v=1, gw=gateway, state="offline")), qos=1, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self._client.on_socket_register_write = self._on_register_write
        self._client.on_socket_unregister_write = self._on_unregister_write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._fd: int | None = None
        self.last_error: str = ""
        """Why the last connect attempt failed (empty after a successful connect)."""
        self.connects = 0
        self.disconnects = 0
        self.acked = 0

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it has not dropped since."""
        return self._connected.is_set() and not self._closing

    async def start(self) -> None:
        """Start connecting (and reconnecting) in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"mqtt-{self.gateway}")

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until connected; ``TimeoutError`` after ``timeout_s`` seconds.

        Raises:
            NotConnectedError: the publisher was closed.
        """
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()
        if self._closing:
            raise NotConnectedError("publisher is closed")

    async def publish_batch(self, batch: Batch | bytes) -> None:
        """Publish a telemetry batch (QoS 1) and return once the broker acknowledged it.

        ``batch`` may be pre-encoded bytes (the disk buffer stores encoded batches). While the
        link is down this waits for the reconnect and the resend.

        Raises:
            PermanentError: the payload exceeds the contract's size limit.
            PublishRejected: the broker refused it (MQTT 5 reason code, e.g. not authorized).
            NotConnectedError: the publisher was closed before the PUBACK.
        """
        payload = batch if isinstance(batch, bytes) else encode(batch)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PermanentError(f"batch of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES} limit")
        await self._publish(self.telemetry_topic, payload, retain=False)

    async def publish_status(self, status: Status, *, retain: bool = True) -> None:
        """Publish a status (retained, QoS 1) and wait for its PUBACK."""
        await self._publish(self.status_topic, encode(status), retain=retain)

    async def run(self) -> None:
        """Connect, keep the connection alive and reconnect until :meth:`aclose`."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        misc = asyncio.create_task(self._misc_loop(), name=f"mqtt-misc-{self.gateway}")
        attempt = 0
        first = True
        try:
            while not self._closing:
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                    if self._closing:
                        break
                attempt += 1
                if not await self._connect_once(first):
                    continue
                first = False
                attempt = 0
                await self._lost.wait()
                attempt = 1
        finally:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc

    async def aclose(self, *, offline_status: bool = True, timeout_s: float = 5.0) -> None:
        """Publish a retained ``offline`` status (when connected), disconnect and stop."""
        if self._closing:
            return
        if offline_status and self.connected:
            with contextlib.suppress(TimeoutError, NotConnectedError, PublishRejected):
                async with asyncio.timeout(timeout_s):
                    await self.publish_status(
                        Status(v=1, gw=self.gateway, state="offline", ts=int(time.time() * 1000))
                    )
        self._closing = True
        if self.connected:
            self._lost.clear()
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._lost.wait()
        self._lost.set()
        self._remove_fd()
        # Wake publishers waiting for a connection: they see the publisher is closed and raise.
        self._connected.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(NotConnectedError("publisher closed before the broker acknowledged"))
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ internals

    async def _publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        if self._closing:
            raise NotConnectedError("publisher is closed")
        # Handing a message to paho only while connected keeps the worker-thread connect and
        # the loop thread from writing to the client at the same time.
        await self._connected.wait()
        if self._closing:
            raise NotConnectedError("publisher is closed")
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise NotConnectedError(f"publish failed: {mqtt.error_string(info.rc)}")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[info.mid] = fut
        try:
            await fut
        finally:
            self._pending.pop(info.mid, None)

    async def _connect_once(self, first: bool) -> bool:
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._lost.clear()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if first:
                    await asyncio.to_thread(self._blocking_connect)
                else:
                    await asyncio.to_thread(self._client.reconnect)
                rc = await self._connack
        except (OSError, TimeoutError, ValueError) as exc:
            self.last_error = (
                f"cannot connect to {self.broker.host}:{self.broker.port}: {exc or type(exc).__name__}"
            )
            log.warning("mqtt: %s", self.last_error)
            if not first:
                self._remove_fd()
            return False
        if rc.is_failure:
            self.last_error = f"broker refused the connection: {rc}"
            log.warning("mqtt %s: %s", self.client_id, self.last_error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._lost.wait()
            return False
        self.last_error = ""
        return True

    def _blocking_connect(self) -> None:
        v5 = self.broker.protocol == "5"
        self._client.connect(
            self.broker.host,
            self.broker.port,
            keepalive=self.broker.keepalive_s,
            clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=connect_properties(self.broker, self._session_expiry_s),
        )

    async def _misc_loop(self) -> None:
        # paho needs a periodic tick for keepalive PINGREQs and their timeout.
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if self._fd is not None:
                self._client.loop_misc()

    def _in_loop(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()

        def add() -> None:
            if self._client.socket() is not sock:
                return
            self._remove_fd()
            self._fd = fd
            assert self._loop is not None
            self._loop.add_reader(fd, self._client.loop_read)

        self._in_loop(add)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()

        def remove() -> None:
            if self._fd == fd:
                self._remove_fd()

        # Removal must happen before the descriptor is closed and possibly reused.
        if threading.get_ident() == self._loop_thread:
            remove()
        else:
            self._in_loop(remove)

    def _remove_fd(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        def add() -> None:
            if self._fd is not None and self._client.socket() is sock and self._loop is not None:
                self._loop.add_writer(self._fd, self._client.loop_write)

        self._in_loop(add)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        def remove() -> None:
            if self._fd is not None and self._loop is not None:
                self._loop.remove_writer(self._fd)

        self._in_loop(remove)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, properties: Any
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)
        if rc.is_failure:
            return
        self.connects += 1
        log.info(
            "mqtt %s connected to %s:%s (session present: %s)",
            self.client_id,
            self.broker.host,
            self.broker.port,
            getattr(flags, "session_present", None),
        )
        if self._on_down is not None:
            client.subscribe([(self.config_topic, 1), (self.command_topic, 1), (self.confirm_topic, 1)])
        self._connected.set()
        if self._birth is not None and self._loop is not None:
            self._loop.create_task(self._publish_birth(), name=f"mqtt-birth-{self.gateway}")

    async def _publish_birth(self) -> None:
        assert self._birth is not None
        try:
            await self.publish_status(self._birth())
        except (NotConnectedError, PublishRejected) as exc:
            log.warning("mqtt: birth status not published: %s", exc)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, properties: Any
    ) -> None:
        if self._connected.is_set():
            self.disconnects += 1
            if not self._closing:
                log.warning("mqtt %s lost the connection: %s", self.client_id, rc)
        self._connected.clear()
        self._lost.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, properties: Any
    ) -> None:
        fut = self._pending.get(mid)
        if fut is None or fut.done():
            return
        if rc.is_failure:
            fut.set_exception(PublishRejected(f"broker rejected the publish: {rc}", reason_code=rc.value))
        else:
            self.acked += 1
            fut.set_result(None)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_down is None:
            return
        if msg.topic == self.config_topic:
            self._on_down("config", bytes(msg.payload))
        elif msg.topic == self.command_topic:
            self._on_down("command", bytes(msg.payload))
        elif msg.topic == self.confirm_topic:
            self._on_down("confirm", bytes(msg.payload))
