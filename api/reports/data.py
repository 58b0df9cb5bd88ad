"""Everything the coverage report shows, gathered once from the read services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics.coverage import cell_area_m2, cell_center, park_cells
from analytics.zone_changes import ZoneChange
from api import models
from api.services import Services
from api.services.sites import previous_period
from storage.query import Scope


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneRow:
    """One dead zone (group of linked zones) of the report, with its nearest site when known."""

    change: ZoneChange
    nearest_site: str | None
    nearest_site_distance_m: float | None
    nearest_site_bearing_deg: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """The figures of one park's coverage report for the window ``[start, end)``."""

    park: str
    park_name: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    generated: datetime
    resolution: int
    boundary: tuple[tuple[float, float], ...]
    coverage: tuple[models.CoverageSummaryItem, ...]
    zones: tuple[ZoneRow, ...]
    gap_cells: tuple[int, ...]
    measured_cells: tuple[int, ...]
    """Park cells with readings of any operator in the window (drawn beside the gaps)."""
    park_area_m2: float | None
    broadband: tuple[models.BroadbandRow, ...]
    broadband_targets: models.BroadbandTargets

    @property
    def gap_area_m2(self) -> float:
        return float(sum(cell_area_m2(c) for c in self.gap_cells))


def gather(
    services: Services,
    *,
    park: str,
    park_name: str,
    scope: Scope,
    resolution: int,
    max_class: str,
    generated: datetime,
) -> ReportData:
    """Collect the report of ``park`` over ``scope``'s window (``scope.parks`` is that one park)."""
    boundary = tuple((float(p[0]), float(p[1])) for p in services.coverage.parks.get(park, []))
    coverage = services.coverage.summary(scope, resolution, max_class)
    changes = services.sites.zone_changes(scope, resolution, max_class)
    zones = []
    annotated = services.sites.annotate_zones(
        [
            {"properties": {"lon": lon, "lat": lat, "operators": [c.operator], "tech": c.tech}}
            for c in changes
            for lon, lat in [_centroid(c)]
        ]
    )
    for c, f in zip(changes, annotated, strict=True):
        pr = f["properties"]
        zones.append(
            ZoneRow(
                change=c,
                nearest_site=pr.get("nearest_site"),
                nearest_site_distance_m=pr.get("nearest_site_distance_m"),
                nearest_site_bearing_deg=pr.get("nearest_site_bearing_deg"),
            )
        )
    gaps = tuple(c for _, c in services.coverage.gaps(scope, resolution))
    stats = services.coverage.cells(scope, resolution).stats
    measured = tuple(
        sorted({int(c) for c, p in zip(stats.h3.tolist(), stats.park.tolist(), strict=True) if p == park})
    )
    prev = previous_period(scope)
    t = services.broadband.settings.broadband
    return ReportData(
        park=park,
        park_name=park_name or park,
        start=scope.start,
        end=scope.end,
        previous_start=prev.start,
        previous_end=prev.end,
        generated=generated,
        resolution=resolution,
        boundary=boundary,
        coverage=tuple(coverage),
        zones=tuple(zones),
        gap_cells=gaps,
        measured_cells=measured,
        park_area_m2=float(sum(cell_area_m2(c) for c in park_cells(boundary, resolution)))
        if boundary
        else None,
        broadband=tuple(services.broadband.summary(scope, "gw")),
        broadband_targets=models.BroadbandTargets(
            down_mbps=t.down_mbps, up_mbps=t.up_mbps, latency_p95_ms=t.latency_p95_ms, loss_pct=t.loss_pct
        ),
    )


def _centroid(change: ZoneChange) -> tuple[float, float]:
    """The area-weighted centre of a zone group's cells (now, or before when it is gone)."""
    cells = sorted(change.cells_after or change.cells_before)
    weights = [cell_area_m2(c) for c in cells]
    total = sum(weights)
    lon = sum(cell_center(c)[0] * w for c, w in zip(cells, weights, strict=True)) / total
    lat = sum(cell_center(c)[1] * w for c, w in zip(cells, weights, strict=True)) / total
    return lon, lat
