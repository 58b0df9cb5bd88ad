"""This ingester's Sparkplug host application state (spec 3.0, section 7.5).

``spBv1.0/STATE/{host_id}`` carries ``{"online": true, "timestamp": t}``, retained, QoS 1,
published after every connect; the connection's Last Will holds ``{"online": false,
"timestamp": t}`` with the same ``t``, and a clean shutdown publishes that offline state itself
(a broker sends a will only for a lost connection). ``t`` grows with every connection, so an
old retained state or a late will can never override a newer birth.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ingest.sparkplug.topics import state_topic

Publish = Callable[..., bool]
"""``publish(topic, payload, *, qos, retain) -> bool``: the consumer's publish."""


class HostState:
    """Births and wills of one host application id.

    Args:
        host_id: the host application id (one topic segment).
        now_ms: wall clock in epoch milliseconds (injectable for tests).
    """

    def __init__(self, host_id: str, now_ms: Callable[[], int]) -> None:
        self.topic = state_topic(host_id)
        self._now_ms = now_ms
        self._next_ts = now_ms()
        self._ts = self._next_ts
        self._publish: Publish | None = None
        self._set_will: Callable[[str, bytes], None] | None = None
        self.births = 0
        """Online states published."""

    @staticmethod
    def payload(online: bool, ts_ms: int) -> bytes:
        return msgspec.json.encode({"online": online, "timestamp": ts_ms})

    def will(self) -> tuple[str, bytes]:
        """The Last Will of the first connection."""
        return self.topic, self.payload(False, self._next_ts)

    def bind(self, publish: Publish, set_will: Callable[[str, bytes], None]) -> None:
        """How to publish, and how to set the next connection's will."""
        self._publish = publish
        self._set_will = set_will

    def on_connected(self) -> None:
        """Publish online with this connection's will timestamp; arm the next will with a newer one."""
        if self._publish is None or self._set_will is None:
            raise RuntimeError("HostState.bind() must be called before connecting")
        self._ts = self._next_ts
        self._publish(self.topic, self.payload(True, self._ts), qos=1, retain=True)
        self.births += 1
        self._next_ts = max(self._now_ms(), self._ts + 1)
        self._set_will(self.topic, self.payload(False, self._next_ts))

    def publish_offline(self) -> bool:
        """The clean shutdown's offline state (same timestamp as this connection's birth)."""
        if self._publish is None:
            return False
        return self._publish(self.topic, self.payload(False, self._ts), qos=1, retain=True)
