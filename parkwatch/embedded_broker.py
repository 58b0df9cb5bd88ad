"""The embedded MQTT 3.1.1 broker (amqtt) used by ``parkwatch demo`` and single-machine setups."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, anonymous access (loopback only by default)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class _SilentClientFilter(logging.Filter):
    """amqtt logs a client that connected and sent nothing (a TCP health check, ``edge doctor``'s
    reachability probe) as an error, twice; that is normal traffic, so it goes to debug. So does
    the traceback of a delivery it gave up waiting for a PUBACK (it warns about that itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("No data from") or text.startswith("Failed to initialize client session: No data"):
            log.debug("embedded broker: %s", text)
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeoutError) and "PUBACK" in str(exc):
            # amqtt gives up a QoS 1 delivery unacknowledged after 5 s (the ingester acknowledges
            # after its write, which a loaded machine can delay) and has warned about it already;
            # the traceback of its broadcast task adds nothing. Gap repair has the gateway resend.
            log.debug("embedded broker: %s", exc)
            return False
        return True


class EmbeddedBroker:
    """Start and stop an in-process amqtt broker on ``host:port``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None
        self._previous_handler: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker  # server-side dependency, imported on use

        # amqtt logs every client connection at INFO; keep the demo's console readable.
        # A quieter root level (``parkwatch demo --quiet``) silences its warnings too.
        quiet = max(logging.WARNING, logging.getLogger().getEffectiveLevel())
        logging.getLogger("amqtt").setLevel(quiet)
        # amqtt's state machines (the ``transitions`` library) log every state change at INFO.
        logging.getLogger("transitions").setLevel(quiet)
        broker_log = logging.getLogger("amqtt.broker")
        if not any(isinstance(f, _SilentClientFilter) for f in broker_log.filters):
            broker_log.addFilter(_SilentClientFilter())
        loop = asyncio.get_running_loop()
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._exception_handler)
        self._broker = Broker(broker_config(self.host, self.port))
        await self._broker.start()
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    def _exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """One line instead of a traceback when a client drops before amqtt finished with it.

        amqtt closes a connection that sent no CONNECT (a TCP health check, ``edge doctor``'s
        reachability probe) or an MQTT 5 CONNECT with a socket call that fails once the peer
        has gone; asyncio then prints the traceback of its connection callback.
        """
        exc = context.get("exception")
        if context.get("message") == "Unhandled exception in client_connected_cb" and isinstance(
            exc, OSError
        ):
            log.info("embedded broker: a client left during its CONNECT: %s", exc)
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def aclose(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
            asyncio.get_running_loop().set_exception_handler(self._previous_handler)
