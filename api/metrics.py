"""Prometheus text metrics of the API process (counters and a latency histogram, no dependency)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Final

BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts and latencies by route template and status; named counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_S) + 1))
        self._sum: dict[str, float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            h = self._hist[route]
            for i, b in enumerate(BUCKETS_S):
                if seconds <= b:
                    h[i] += 1
                    break
            else:
                h[-1] += 1
            self._sum[route] += seconds

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def render(self, gauges: dict[str, float] | None = None) -> str:
        lines = [
            "# HELP parkwatch_api_requests_total HTTP requests by method, route and status.",
            "# TYPE parkwatch_api_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self._requests.items()):
                lines.append(
                    f'parkwatch_api_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}'
                )
            lines += [
                "# HELP parkwatch_api_request_seconds Request latency by route.",
                "# TYPE parkwatch_api_request_seconds histogram",
            ]
            for route, h in sorted(self._hist.items()):
                cum = 0
                for b, n in zip((*BUCKETS_S, float("inf")), h, strict=True):
                    cum += n
                    le = "+Inf" if b == float("inf") else repr(b)
                    lines.append(f'parkwatch_api_request_seconds_bucket{{route="{route}",le="{le}"}} {cum}')
                lines.append(f'parkwatch_api_request_seconds_count{{route="{route}"}} {cum}')
                lines.append(f'parkwatch_api_request_seconds_sum{{route="{route}"}} {self._sum[route]:.6f}')
            for name, n in sorted(self.counters.items()):
                lines += [f"# TYPE parkwatch_api_{name}_total counter", f"parkwatch_api_{name}_total {n}"]
        for name, v in sorted((gauges or {}).items()):
            lines += [f"# TYPE parkwatch_api_{name} gauge", f"parkwatch_api_{name} {v}"]
        return "\n".join(lines) + "\n"
