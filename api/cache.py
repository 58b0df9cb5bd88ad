"""The read cache of the API: one small LRU whose entries expire, or outlive their TTL while the
data they were computed from is unchanged.

:meth:`ReadCache.get_or_compute` is the one call. An entry lives ``ttl_s``; one stored under a
data version (:meth:`storage.query.QueryBackend.data_version`, a cheap fingerprint of the
readings) is also reused after that for as long as the backend answers the same version, because
an answer computed from the same readings is the same answer. Identical calls that arrive while
one is being computed wait for it instead of computing it again (single flight): the cold
coverage query costs hundreds of milliseconds, and a dashboard asks it from several panels at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    version: Hashable | None
    value: Any


class ReadCache:
    """An LRU cache of computed answers (``ttl_s`` 0 disables it).

    Args:
        ttl_s: how long an entry is fresh.
        max_entries: entries kept; the least recently used goes first.
    """

    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable) -> Any:
        """The fresh value of ``key``, or None."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._data.get(key)
        return hit.value if hit is not None and hit.expires > time.monotonic() else None

    def put(self, key: Hashable, value: Any, *, version: Hashable | None = None) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` (and, with a ``version``, while it stands)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._data[key] = _Entry(time.monotonic() + self.ttl_s, version, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def _lookup(self, key: Hashable, version: Hashable | None) -> _Entry | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit.expires > time.monotonic() or (version is not None and hit.version == version):
            self._data.move_to_end(key)
            return hit
        return None

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], T], *, version: Hashable | None = None
    ) -> T:
        """The cached value of ``key``, else ``compute()`` stored under ``version``.

        ``version`` must be read before ``compute`` runs, so the value is at least as new as
        the version it is kept under.
        """
        if self.ttl_s <= 0:
            return compute()
        while True:
            with self._lock:
                hit = self._lookup(key, version)
                if hit is not None:
                    self.hits += 1
                    value: T = hit.value
                    return value
                waiting = self._inflight.get(key)
                if waiting is None:
                    done = self._inflight[key] = threading.Event()
                    self.misses += 1
                    break
            waiting.wait()  # single flight: the other caller stores the value (or fails)
        try:
            value = compute()
            self.put(key, value, version=version)
            return value
        finally:
            with self._lock:
                del self._inflight[key]
            done.set()
