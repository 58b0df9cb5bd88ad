"""Ingester metrics and their ``/metrics`` endpoint (Prometheus text format 0.0.4).

Counters and histograms are plain attributes updated from the event loop (no locks needed);
:func:`serve_metrics` is a minimal asyncio HTTP server answering ``GET /metrics`` and
``GET /healthz`` (``200 ok``, or ``503 degraded: <reason>`` while a sink error repeats for the
same batch).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class Histogram:
    """A cumulative-bucket histogram (seconds)."""

    buckets: tuple[float, ...] = _LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(_LATENCY_BUCKETS_S) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value_s: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.buckets, value_s)] += times
        self.total += value_s * times
        self.n += times

    def render(self, name: str) -> list[str]:
        lines = []
        cum = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cum += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {cum}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.n}")
        return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(slots=True)
class Metrics:
    """Everything ``/metrics`` shows. Gauges that live elsewhere are read through callbacks."""

    messages: Counter[str] = field(default_factory=Counter)
    readings_stored: int = 0
    batches_written: int = 0
    batches_spooled: int = 0
    batches_replayed: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    """Dead-lettered readings and dropped fields by reason key (``out_of_range:sinr_db``)."""
    loop_errors: Counter[str] = field(default_factory=Counter)
    sink_errors: Counter[str] = field(default_factory=Counter)
    """Failed sink writes by class: ``unavailable`` (outage, spooled), ``refused`` (content,
    isolated), ``unexpected`` (a bug, spooled)."""
    degraded: str = ""
    """Why ``/healthz`` reports degraded (empty: healthy)."""
    write_latency: Histogram = field(default_factory=Histogram)
    e2e_latency: Histogram = field(default_factory=Histogram)
    gauges: dict[str, Callable[[], float]] = field(default_factory=dict)
    ledger: Callable[[], dict[str, dict[str, int]]] | None = None
    _rate_samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def readings_per_second(self) -> float:
        """Stored readings per second over the last ~10 s (sampled at each scrape and write)."""
        now = time.monotonic()
        self._rate_samples.append((now, self.readings_stored))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > 10.0:
            self._rate_samples.popleft()
        (t0, c0), (t1, c1) = self._rate_samples[0], self._rate_samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    def render(self) -> str:
        p = "parkwatch_ingest"
        out = [
            f"# HELP {p}_messages_total MQTT messages received by channel.",
            f"# TYPE {p}_messages_total counter",
            *(f'{p}_messages_total{{channel="{_label(k)}"}} {v}' for k, v in sorted(self.messages.items())),
            f"# TYPE {p}_readings_total counter",
            f"{p}_readings_total {self.readings_stored}",
            f"# TYPE {p}_readings_per_second gauge",
            f"{p}_readings_per_second {self.readings_per_second():.1f}",
            f"# TYPE {p}_batches_written_total counter",
            f"{p}_batches_written_total {self.batches_written}",
            f"# TYPE {p}_batches_spooled_total counter",
            f"{p}_batches_spooled_total {self.batches_spooled}",
            f"# TYPE {p}_batches_replayed_total counter",
            f"{p}_batches_replayed_total {self.batches_replayed}",
            f"# HELP {p}_dead_letters_total Rejected readings, batches and points by reason class.",
            f"# TYPE {p}_dead_letters_total counter",
            *(
                f'{p}_dead_letters_total{{reason="{_label(k)}"}} {v}'
                for k, v in sorted(self.dead_letters.items())
            ),
            f"# HELP {p}_dead_letter_reasons_total Refused readings and dropped fields by reason code and field.",
            f"# TYPE {p}_dead_letter_reasons_total counter",
            *(
                f'{p}_dead_letter_reasons_total{{code="{_label(k.partition(":")[0])}",'
                f'field="{_label(k.partition(":")[2])}"}} {v}'
                for k, v in sorted(self.dead_letter_reasons.items())
            ),
            f"# TYPE {p}_loop_errors_total counter",
            *(
                f'{p}_loop_errors_total{{loop="{_label(k)}"}} {v}'
                for k, v in sorted(self.loop_errors.items())
            ),
            f"# HELP {p}_sink_errors_total Failed sink writes by class (unavailable, refused, unexpected).",
            f"# TYPE {p}_sink_errors_total counter",
            *(
                f'{p}_sink_errors_total{{class="{_label(k)}"}} {v}'
                for k, v in sorted(self.sink_errors.items())
            ),
            f"# HELP {p}_degraded 1 while a sink error repeats for the same batch (see /healthz).",
            f"# TYPE {p}_degraded gauge",
            f"{p}_degraded {int(bool(self.degraded))}",
            f"# HELP {p}_write_seconds Sink write duration per batch.",
            f"# TYPE {p}_write_seconds histogram",
            *self.write_latency.render(f"{p}_write_seconds"),
            f"# HELP {p}_e2e_latency_seconds From the batch's sent stamp to its durable write.",
            f"# TYPE {p}_e2e_latency_seconds histogram",
            *self.e2e_latency.render(f"{p}_e2e_latency_seconds"),
        ]
        for name, fn in sorted(self.gauges.items()):
            out += [f"# TYPE {p}_{name} gauge", f"{p}_{name} {fn()}"]
        if self.ledger is not None:
            for counter, per_gw in self.ledger().items():
                out.append(f"# TYPE {p}_ledger_{counter}_total counter")
                out += [
                    f'{p}_ledger_{counter}_total{{gw="{_label(gw)}"}} {v}' for gw, v in sorted(per_gw.items())
                ]
        return "\n".join(out) + "\n"


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Start the ``/metrics`` and ``/healthz`` endpoint; the caller closes the returned server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path == b"/metrics":
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", metrics.render().encode()
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
