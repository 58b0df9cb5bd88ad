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

The connection itself (paho on the asyncio loop, TLS, reconnect, backoff) is a
:class:`mqttlink.MqttLink`; this class adds the PUBACK futures, the status topics and the
down-link routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from contract.codec import encode
from contract.limits import MAX_PAYLOAD_BYTES
from contract.messages import Batch, Status
from contract.topics import topic_for
from edge_agent.errors import NotConnectedError, PermanentError, PublishRejected
from mqttlink import Backoff, MqttLink
from settings.common import BrokerSettings

log = logging.getLogger(__name__)

DownChannel = Literal["config", "command", "confirm"]


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
        self._down: dict[str, DownChannel] = {
            topic_for(park, gateway, channel, root=root): channel
            for channel in ("config", "command", "confirm")
        }
        self._birth = birth
        self._on_down = on_down
        self.link = MqttLink(
            broker,
            client_id=self.client_id,
            session_expiry_s=session_expiry_s,
            subscriptions=[(topic, 1) for topic in self._down] if on_down is not None else (),
            backoff=backoff,
            connect_timeout_s=connect_timeout_s,
            will=(self.status_topic, encode(Status(v=1, gw=gateway, state="offline"))),
            max_inflight=max_inflight,
            on_connected=self._on_connected,
            on_message=self._on_message,
            on_publish=self._on_publish,
            name=f"mqtt-{gateway}",
        )
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.acked = 0

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it has not dropped since."""
        return self.link.connected.is_set() and not self.link.closing

    @property
    def connects(self) -> int:
        """Connections the broker accepted."""
        return self.link.connects

    @property
    def disconnects(self) -> int:
        """Accepted connections that ended."""
        return self.link.disconnects

    @property
    def last_error(self) -> str:
        """Why the last connect attempt failed (empty after a successful connect)."""
        return self.link.last_error

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
            if not await self.link.wait_connected():
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
        await self.link.run()

    async def aclose(self, *, offline_status: bool = True, timeout_s: float = 5.0) -> None:
        """Publish a retained ``offline`` status (when connected), disconnect and stop."""
        if self.link.closing:
            return
        if offline_status and self.connected:
            with contextlib.suppress(TimeoutError, NotConnectedError, PublishRejected):
                async with asyncio.timeout(timeout_s):
                    await self.publish_status(
                        Status(v=1, gw=self.gateway, state="offline", ts=int(time.time() * 1000))
                    )
        await self.link.close(timeout_s=timeout_s)
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
        # Handing a message to paho only while connected keeps the worker-thread connect and
        # the loop thread from writing to the client at the same time.
        if not await self.link.wait_connected():
            raise NotConnectedError("publisher is closed")
        info = self.link.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise NotConnectedError(f"publish failed: {mqtt.error_string(info.rc)}")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[info.mid] = fut
        try:
            await fut
        finally:
            self._pending.pop(info.mid, None)

    def _on_connected(self) -> None:
        if self._birth is not None:
            asyncio.get_running_loop().create_task(self._publish_birth(), name=f"mqtt-birth-{self.gateway}")

    async def _publish_birth(self) -> None:
        assert self._birth is not None
        try:
            await self.publish_status(self._birth())
        except (NotConnectedError, PublishRejected) as exc:
            log.warning("mqtt: birth status not published: %s", exc)

    def _on_publish(self, mid: int, rc: ReasonCode) -> None:
        fut = self._pending.get(mid)
        if fut is None or fut.done():
            return
        if rc.is_failure:
            fut.set_exception(PublishRejected(f"broker rejected the publish: {rc}", reason_code=rc.value))
        else:
            self.acked += 1
            fut.set_result(None)

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        channel = self._down.get(msg.topic)
        if channel is not None and self._on_down is not None:
            self._on_down(channel, bytes(msg.payload))
