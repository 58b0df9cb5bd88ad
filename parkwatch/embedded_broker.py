"""The embedded MQTT 3.1.1 broker (amqtt) used by ``parkwatch demo`` and single-machine setups."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, anonymous access (loopback only by default)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class EmbeddedBroker:
    """Start and stop an in-process amqtt broker on ``host:port``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker  # server-side dependency, imported on use

        # amqtt logs every client connection at INFO; keep the demo's console readable.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._broker = Broker(broker_config(self.host, self.port))
        await self._broker.start()
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def aclose(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
