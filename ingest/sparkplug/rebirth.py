"""Rebirth requests: NCMD ``Node Control/Rebirth`` = true, at most once per node per interval.

The specification has a host ask for new births when it cannot interpret a node's data (an
unknown alias, data before a birth) or has missed messages (a ``seq`` gap). A node that keeps
sending unknown aliases must not be flooded with requests, so they are rate-limited per node.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Final

from ingest.sparkplug.payload import rebirth_request
from ingest.sparkplug.state import Publish
from ingest.sparkplug.topics import ncmd_topic

log = logging.getLogger(__name__)

MAX_NODES: Final = 100_000
"""Nodes whose last request time is kept (forgotten all at once beyond: one extra request each)."""


class Rebirths:
    """Sends rate-limited rebirth requests.

    Args:
        interval_s: at most one request per edge node this often.
        events: counts ``rebirth_requested`` and ``rebirth_suppressed``.
        now_ms, monotonic: clocks (injectable for tests).
    """

    def __init__(
        self,
        interval_s: float,
        events: Counter[str],
        now_ms: Callable[[], int],
        monotonic: Callable[[], float],
    ) -> None:
        self._interval_s = interval_s
        self._events = events
        self._now_ms = now_ms
        self._monotonic = monotonic
        self._last: dict[tuple[str, str], float] = {}
        self._publish: Publish | None = None
        self.sent: list[tuple[str, str, str]] = []
        """Requests published: (group, edge node, why), the newest 100."""

    def bind(self, publish: Publish) -> None:
        self._publish = publish

    def request(self, group: str, edge_node: str, why: str) -> bool:
        """Ask ``group``/``edge_node`` for new births unless asked within the interval."""
        key = (group, edge_node)
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._events["rebirth_suppressed"] += 1
            return False
        if self._publish is None:
            return False
        # Spec 3.0: NCMD is published with QoS 0 and not retained.
        if not self._publish(
            ncmd_topic(group, edge_node), rebirth_request(self._now_ms()), qos=0, retain=False
        ):
            return False
        if len(self._last) >= MAX_NODES:
            self._last.clear()
        self._last[key] = now
        self._events["rebirth_requested"] += 1
        self.sent.append((group, edge_node, why))
        del self.sent[:-100]
        log.info("requested a rebirth of sparkplug edge node %s/%s: %s", group, edge_node, why)
        return True
