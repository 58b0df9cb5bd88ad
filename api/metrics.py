"""Prometheus metrics of the API process (``prometheus_client``, one registry per application)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_P: Final = "parkwatch_api"


class Metrics:
    """Request counts and latencies by route template and status; named counters.

    Attributes:
        counters: named event counts (``backend_errors``, ``unhandled_errors``, ...), exported
            as ``parkwatch_api_<name>_total``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, int] = defaultdict(int)
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            f"{_P}_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            f"{_P}_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=BUCKETS_S,
            registry=self.registry,
        )
        # ``labels()`` validates and locks on every call (~5 us); the label sets are few (routes
        # are templates), so each one's children are looked up once.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self._requests.labels(method, route, str(status)), self._seconds.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the named counter."""
        with self._lock:
            self.counters[name] += n

    def render(self, gauges: dict[str, float] | None = None) -> bytes:
        """The Prometheus text exposition, with ``gauges`` (read by the caller now) added."""
        with self._lock:
            named = sorted(self.counters.items())
        return generate_latest(_Scrape(self.registry, named, sorted((gauges or {}).items())))


class _Scrape:
    """One scrape: the registry's metrics plus the named counters and the caller's gauges."""

    def __init__(
        self,
        registry: CollectorRegistry,
        counters: Iterable[tuple[str, int]],
        gauges: Iterable[tuple[str, float]],
    ) -> None:
        self._registry = registry
        self._counters = counters
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        for name, n in self._counters:
            yield CounterMetricFamily(f"{_P}_{name}", name.replace("_", " ") + ".", value=n)
        for name, v in self._gauges:
            yield GaugeMetricFamily(f"{_P}_{name}", name.replace("_", " ") + ".", value=v)
