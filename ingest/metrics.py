"""Ingester metrics and their ``/metrics`` endpoint (Prometheus text, ``prometheus_client``).

The ingester's own counts are plain attributes updated from the event loop (no locks needed) and
read by its log and tests; a collector turns them into Prometheus samples at each scrape. The two
latency histograms are ``prometheus_client`` histograms. Every ingester object has its own
registry, so several run side by side in one process (tests, ``parkwatch demo``).
:func:`serve_metrics` is a minimal asyncio HTTP server answering ``GET /metrics`` and
``GET /healthz`` (``200 ok``, or ``503 degraded: <reason>`` while a sink error repeats for the
same batch).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from contract.topics import DOWN_CHANNELS, UP_CHANNELS

LATENCY_BUCKETS_S: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip
"""Finer between 50 ms and 1.5 s, where the end-to-end latency goal (p99 <= 1 s) is judged."""
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_P: Final = "parkwatch_ingest"


class Metrics:
    """Everything ``/metrics`` shows. Gauges that live elsewhere are read through callbacks.

    Attributes:
        messages: MQTT messages received by channel (``invalid`` for a topic that is not ours,
            ``sparkplug`` for Sparkplug B). A plain dict holding every key from the start (0 until
            one arrives; only the seen ones are shown): counted once per message, and an exact
            dict's ``+= 1`` costs a quarter of a ``Counter``'s.
        readings_stored, batches_written, batches_spooled, batches_replayed: running totals.
        dead_letters: rejected readings, batches and points by reason class.
        dead_letter_reasons: dead-lettered readings and dropped fields by reason key
            (``out_of_range:sinr_db``: the stable code, then the field).
        loop_errors: unexpected errors caught by a supervised loop, by loop.
        sink_errors: failed sink writes by class: ``unavailable`` (outage, spooled), ``refused``
            (content, isolated), ``unexpected`` (a bug, spooled).
        sparkplug: Sparkplug B events: messages by type, ``rebirth_requested``,
            ``rebirth_suppressed`` (rate limit), ``stale_death`` (an NDEATH of an older bdSeq).
        degraded: why ``/healthz`` reports degraded (empty: healthy).
        write_latency, e2e_latency: sink write duration per batch; batch ``sent`` stamp to its
            durable write, per message (seconds).
        gauges: name (after ``parkwatch_ingest_``) → a callback read at each scrape.
        ledger: the loss ledger's totals by counter and gateway, read at each scrape.
    """

    def __init__(self) -> None:
        self.messages: dict[str, int] = dict.fromkeys(
            sorted([*UP_CHANNELS, *DOWN_CHANNELS, "invalid", "sparkplug"]), 0
        )
        self.readings_stored = 0
        self.batches_written = 0
        self.batches_spooled = 0
        self.batches_replayed = 0
        self.dead_letters: Counter[str] = Counter()
        self.dead_letter_reasons: Counter[str] = Counter()
        self.loop_errors: Counter[str] = Counter()
        self.sink_errors: Counter[str] = Counter()
        self.sparkplug: Counter[str] = Counter()
        self.degraded = ""
        self.gauges: dict[str, Callable[[], float]] = {}
        self.ledger: Callable[[], dict[str, dict[str, int]]] | None = None
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=64)
        self.registry = CollectorRegistry(auto_describe=False)
        self.write_latency = Histogram(
            f"{_P}_write_seconds",
            "Sink write duration per batch.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.e2e_latency = Latency(
            f"{_P}_e2e_latency_seconds", "From the batch's sent stamp to its durable write."
        )
        self.registry.register(_Counts(self))

    def readings_per_second(self) -> float:
        """Stored readings per second over the last ~10 s (sampled at each scrape and write)."""
        now = time.monotonic()
        self._rate_samples.append((now, self.readings_stored))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > 10.0:
            self._rate_samples.popleft()
        (t0, c0), (t1, c1) = self._rate_samples[0], self._rate_samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class Latency:
    """A latency histogram (seconds, :data:`LATENCY_BUCKETS_S`) that takes a batch's values in
    one call: one observation per message costs ``prometheus_client`` a lock and a loop over the
    buckets each; here it is a binary search (the event loop is the only writer)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc
        self._counts = [0] * (len(LATENCY_BUCKETS_S) + 1)  # the last one: above every bound
        self.sum_s = 0.0

    def observe_since_ms(self, now_ms: float, stamps_ms: list[int]) -> None:
        """Count the time from each stamp to ``now_ms`` in seconds; a stamp of 0 (none) is left
        out, a time below 0 (a sender's clock ahead of ours) counts as 0."""
        counts = self._counts
        find = bisect.bisect_left
        bounds = LATENCY_BUCKETS_S
        total = 0.0
        for stamp in stamps_ms:
            if stamp:
                v = (now_ms - stamp) / 1000
                counts[find(bounds, v)] += 1
                if v > 0:
                    total += v
        self.sum_s += total

    @property
    def count(self) -> int:
        """Values observed."""
        return sum(self._counts)

    def metric(self) -> HistogramMetricFamily:
        """The Prometheus histogram: cumulative counts by upper bound, sum and count."""
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip([*map(str, LATENCY_BUCKETS_S), "+Inf"], self._counts, strict=True):
            total += n
            buckets.append((bound, total))
        return HistogramMetricFamily(self.name, self.doc, buckets=buckets, sum_value=self.sum_s)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{_P}_{name}", doc, value=value)


def _labelled(name: str, doc: str, label: str, values: Counter[str] | dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{_P}_{name}", doc, labels=[label])
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family


class _Counts(Collector):
    """The ingester's plain counters and callback gauges as Prometheus samples, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        seen = {channel: n for channel, n in m.messages.items() if n}
        yield _labelled("messages", "MQTT messages received by channel.", "channel", seen)
        yield _counter("readings", "Readings durably written.", m.readings_stored)
        yield m.e2e_latency.metric()
        yield _labelled(
            "sparkplug_events",
            "Sparkplug B messages by type, rebirth requests, stale deaths.",
            "event",
            m.sparkplug,
        )
        yield GaugeMetricFamily(
            f"{_P}_readings_per_second",
            "Readings written per second over ~10 s.",
            value=m.readings_per_second(),
        )
        yield _counter("batches_written", "Write batches the sink stored.", m.batches_written)
        yield _counter("batches_spooled", "Write batches spooled to disk.", m.batches_spooled)
        yield _counter("batches_replayed", "Spooled batches written later.", m.batches_replayed)
        yield _labelled(
            "dead_letters", "Rejected readings, batches and points by reason class.", "reason", m.dead_letters
        )
        reasons = CounterMetricFamily(
            f"{_P}_dead_letter_reasons",
            "Refused readings and dropped fields by reason code and field.",
            labels=["code", "field"],
        )
        for key, value in sorted(m.dead_letter_reasons.items()):
            code, _, name = key.partition(":")
            reasons.add_metric([code, name], value)
        yield reasons
        yield _labelled(
            "loop_errors", "Unexpected errors caught by a supervised loop.", "loop", m.loop_errors
        )
        yield _labelled(
            "sink_errors",
            "Failed sink writes by class (unavailable, refused, unexpected).",
            "class",
            m.sink_errors,
        )
        yield GaugeMetricFamily(
            f"{_P}_degraded",
            "1 while a sink error repeats for the same batch (see /healthz).",
            value=int(bool(m.degraded)),
        )
        for name, fn in sorted(m.gauges.items()):
            yield GaugeMetricFamily(f"{_P}_{name}", name.replace("_", " ") + ".", value=fn())
        if m.ledger is not None:
            for counter, per_gw in m.ledger().items():
                yield _labelled(
                    f"ledger_{counter}", f"Loss ledger: {counter} batches by gateway.", "gw", per_gw
                )


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Start the ``/metrics`` and ``/healthz`` endpoint; the caller closes the returned server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path == b"/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE, metrics.render()
            elif path == b"/healthz" and metrics.degraded:
                status, ctype = "503 Service Unavailable", "text/plain; charset=utf-8"
                body = f"degraded: {metrics.degraded}\n".encode()
            elif path == b"/healthz":
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that went away or sent garbage: nothing to answer
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
