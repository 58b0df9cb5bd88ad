"""The read cache of the API: one small LRU whose entries expire, outlive their TTL while the data
they were computed from is unchanged, and are refreshed in the background once stale.

:meth:`ReadCache.get_or_compute` is the one call. An entry is fresh for ``ttl_s``; one stored under
a data version (:meth:`storage.query.QueryBackend.data_version`, a cheap fingerprint of the
readings) stays fresh after that for as long as the backend answers the same version, because an
answer computed from the same readings is the same answer. A stale entry (expired, its data
changed) is still answered for ``stale_s`` while one recomputation runs on the cache's own worker
thread (stale while revalidate): a cold coverage view costs seconds on a large store, and a live
dashboard should not wait for it every ``ttl_s``. Identical calls that find no usable entry while
one is being computed wait for it instead of computing it again (single flight).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    version: Hashable | None
    value: Any
    size: int = 0


class ReadCache:
    """An LRU cache of computed answers (``ttl_s`` 0 disables it).

    Args:
        ttl_s: how long an entry is fresh.
        max_entries: entries kept; the least recently used goes first.
        stale_s: how long past its freshness an entry is still answered while it is recomputed
            in the background (0: callers wait for the new value).
        max_bytes: with ``size_of``, the most the kept values may weigh together; the least
            recently used go first, and a value heavier than this alone is not kept.
        size_of: the weight of a value in bytes (an encoded answer: its length).
    """

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 256,
        stale_s: float = 0.0,
        *,
        max_bytes: int | None = None,
        size_of: Callable[[Any], int] | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes if size_of is not None else None
        self._size_of = size_of
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.refresh_errors = 0
        self._data: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, threading.Event] = {}
        self._refresher: ThreadPoolExecutor | None = None

    def get(self, key: Hashable) -> Any:
        """The fresh value of ``key``, or None."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._data.get(key)
        return hit.value if hit is not None and hit.expires > time.monotonic() else None

    def lookup(self, key: Hashable) -> tuple[Any, bool]:
        """``(value, fresh)``: a fresh value, a stale one (expired less than ``stale_s`` ago, not
        fresh), or ``(None, False)``. For callers that compute asynchronously themselves."""
        if self.ttl_s <= 0:
            return None, False
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
        if hit is None or hit.expires + self.stale_s <= now:
            return None, False
        return hit.value, hit.expires > now

    def put(self, key: Hashable, value: Any, *, version: Hashable | None = None) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` (and, with a ``version``, while it stands)."""
        if self.ttl_s <= 0:
            return
        size = self._size_of(value) if self._size_of is not None else 0
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            if self.max_bytes is not None and size > self.max_bytes:
                return  # heavier than the whole budget: answered, not kept
            self._data[key] = _Entry(time.monotonic() + self.ttl_s, version, value, size)
            self.bytes += size
            while len(self._data) > self.max_entries or (
                self.max_bytes is not None and self.bytes > self.max_bytes
            ):
                self.bytes -= self._data.popitem(last=False)[1].size

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
                hit = self._data.get(key)
                now = time.monotonic()
                if hit is not None and (
                    hit.expires > now or (version is not None and hit.version == version)
                ):
                    self._data.move_to_end(key)
                    self.hits += 1
                    value: T = hit.value
                    return value
                waiting = self._inflight.get(key)
                if hit is not None and hit.expires + self.stale_s > now:
                    self.hits += 1
                    if waiting is None:  # the first to see it stale starts the one refresh
                        self._inflight[key] = threading.Event()
                        self._refresh_pool().submit(self._refresh, key, compute, version)
                    stale: T = hit.value
                    return stale
                if waiting is None:
                    self._inflight[key] = threading.Event()
                    self.misses += 1
                    break
            waiting.wait()  # single flight: the other caller stores the value (or fails)
        try:
            value = compute()
            self.put(key, value, version=version)
            return value
        finally:
            self._settle(key)

    def close(self) -> None:
        """Stop refreshing in the background: stale entries are no longer answered; waits for a
        refresh that is running."""
        with self._lock:
            pool, self._refresher = self._refresher, None
            self.stale_s = 0.0
        if pool is not None:
            pool.shutdown(wait=True)

    def _refresh_pool(self) -> ThreadPoolExecutor:
        if self._refresher is None:
            self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-refresh")
        return self._refresher

    def _refresh(self, key: Hashable, compute: Callable[[], Any], version: Hashable | None) -> None:
        try:
            self.put(key, compute(), version=version)
        except Exception:  # the top of a background refresh: logged and counted; the next caller retries
            self.refresh_errors += 1
            log.warning("background refresh of a cached answer failed", exc_info=True)
        finally:
            self._settle(key)

    def _settle(self, key: Hashable) -> None:
        """The computation of ``key`` ended: wake whoever waits for it."""
        with self._lock:
            event = self._inflight.pop(key, None)
        if event is not None:
            event.set()
