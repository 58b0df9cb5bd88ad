"""Broadband: probe statistics per gateway or park, classed against the service targets."""

from __future__ import annotations

from msgspec import UNSET

from analytics.signal import BROADBAND_CLASSES, BroadbandTargets, classify_broadband
from api import models
from api.cache import ReadCache
from api.services.common import as_float
from settings.api import ApiSettings
from storage.query import QueryBackend, Scope


class BroadbandService:
    """Broadband answers over one backend."""

    def __init__(self, settings: ApiSettings, backend: QueryBackend, cache: ReadCache) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache

    def summary(self, scope: Scope, by: str) -> list[models.BroadbandRow]:
        """Quality per gateway (``by="gw"``) or per park, each with its class and the targets."""
        stats = self.cache.get_or_compute(
            ("bb", scope, by),
            lambda: self.backend.broadband_stats(scope, by="park" if by == "park" else "gw"),
        )
        t = self.settings.broadband
        targets = models.BroadbandTargets(
            down_mbps=t.down_mbps, up_mbps=t.up_mbps, latency_p95_ms=t.latency_p95_ms, loss_pct=t.loss_pct
        )
        cls = classify_broadband(
            down_mbps=stats.down_median_mbps,
            up_mbps=stats.up_median_mbps,
            latency_p95_ms=stats.latency_p95_ms,
            loss_pct=stats.loss_mean_pct,
            targets=BroadbandTargets(
                down_mbps=t.down_mbps, up_mbps=t.up_mbps, latency_p95_ms=t.latency_p95_ms, loss_pct=t.loss_pct
            ),
        )
        out = []
        for i, row in enumerate(stats.rows()):
            probes, ok = int(row["ipv6_probes"]), int(row["ipv6_ok"])
            out.append(
                models.BroadbandRow(
                    park=row["park"],
                    gw=UNSET if by == "park" else row["gw"],
                    samples=int(row["samples"]),
                    latency_p50_ms=as_float(row["latency_p50_ms"]),
                    latency_p95_ms=as_float(row["latency_p95_ms"]),
                    jitter_mean_ms=as_float(row["jitter_mean_ms"]),
                    loss_mean_pct=as_float(row["loss_mean_pct"]),
                    down_median_mbps=as_float(row["down_median_mbps"]),
                    up_median_mbps=as_float(row["up_median_mbps"]),
                    ipv6_share=round(ok / probes, 4) if probes else None,
                    class_="unknown" if cls[i] < 0 else BROADBAND_CLASSES[cls[i]],
                    targets=targets,
                )
            )
        return out
