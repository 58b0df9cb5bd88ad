"""Cell sites, best server and dead-zone progress between two periods.

Sites live in the registry file (:mod:`storage.cell_sites`); the best-server layer and the zone
changes read the same cellular samples and dead-zone tests as :mod:`api.services.coverage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from analytics.best_server import BestServerCell, best_servers
from analytics.sites import nearest_site
from analytics.zone_changes import ZoneChange, compare_zones
from api.cache import ReadCache
from api.services.coverage import CoverageService
from settings.api import ApiSettings
from storage.cell_sites import (
    CellSite,
    CellSites,
    ParsedSites,
    bbox_around,
    operator_of,
    parse_opencellid_text,
)
from storage.query import QueryBackend, Scope


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import stored and refused."""

    rows: int
    added: int
    replaced: int
    errors: int
    error_lines: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "replaced": self.replaced,
            "refused": self.errors,
            "errors": list(self.error_lines),
        }


def store_sites(store: CellSites, parsed: ParsedSites, *, max_errors: int = 100) -> ImportReport:
    """Store the good sites of ``parsed``; the report lists up to ``max_errors`` refused lines."""
    added, replaced = store.put(parsed.sites)
    return ImportReport(
        rows=parsed.rows,
        added=added,
        replaced=replaced,
        errors=len(parsed.errors),
        error_lines=tuple({"line": e.line, "reason": e.reason} for e in parsed.errors[:max_errors]),
    )


def previous_period(scope: Scope) -> Scope:
    """The period of equal length just before ``scope``'s window."""
    length = scope.end - scope.start
    return replace(scope, start=scope.start - length, end=scope.start)


class SitesService:
    """Sites, best server and zone changes over one backend and the registry's site table."""

    def __init__(
        self,
        settings: ApiSettings,
        backend: QueryBackend,
        cache: ReadCache,
        coverage: CoverageService,
        store: CellSites,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache
        self.coverage = coverage
        self.store = store

    # -- sites --

    def import_csv(self, text: str) -> ImportReport:
        """Parse an OpenCelliD CSV and store its good rows (``SiteFileError`` for a bad header)."""
        return store_sites(self.store, parse_opencellid_text(text))

    def operator(self, site: CellSite) -> str | None:
        return operator_of(site, self.settings.coverage.operators_by_plmn)

    def known(self) -> bool:
        """Whether any site was imported."""
        return self.store.count() > 0

    def park_bbox(self, park: str) -> tuple[float, float, float, float] | None:
        """The park's boundary box widened by ``[coverage] site_margin_m``; None without a boundary."""
        ring = self.coverage.parks.get(park)
        if not ring:
            return None
        return bbox_around(ring, self.settings.coverage.site_margin_m)

    def sites(self, parks: Sequence[str] | None) -> list[CellSite]:
        """Sites near the given parks (with a boundary), or every site (``None``)."""
        if parks is None:
            return self.store.sites()
        seen: dict[str, CellSite] = {}
        for park in parks:
            box = self.park_bbox(park)
            if box is not None:
                seen.update((s.key, s) for s in self.store.sites(box))
        return [seen[k] for k in sorted(seen)]

    def sites_of(self, park: str, operator: str, tech: str) -> list[tuple[float, float]]:
        """``(lon, lat)`` of ``operator``'s ``tech`` sites near ``park`` (the prediction's trend)."""
        wanted = operator.lower()
        return [
            (s.lon, s.lat)
            for s in self.sites([park])
            if s.radio == tech and (self.operator(s) or "").lower() == wanted
        ]

    def site_features(self, sites: Sequence[CellSite]) -> list[dict[str, Any]]:
        return [s.feature(self.operator(s)) for s in sites]

    def annotate_zones(self, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give each dead-zone feature its nearest site of the same operator and technology.

        Adds ``nearest_site`` (``radio:mcc-net:area:cell``), ``nearest_site_distance_m`` and
        ``nearest_site_bearing_deg`` (from the zone's centroid to the site, clockwise from north),
        all None when no such site lies within ``site_margin_m`` of the centroid. Features are left
        as they are when no site was ever imported.
        """
        if not features or not self.known():
            return features
        margin = self.settings.coverage.site_margin_m
        for f in features:
            pr = f["properties"]
            lon, lat = float(pr["lon"]), float(pr["lat"])
            box = bbox_around([(lon, lat)], margin)
            operators = {str(o).lower() for o in pr.get("operators") or []}
            candidates = [
                s
                for s in self.store.sites(box)
                if s.radio == pr.get("tech") and (self.operator(s) or "").lower() in operators
            ]
            near = nearest_site(lon, lat, [s.lon for s in candidates], [s.lat for s in candidates])
            if near is None or near.distance_m > margin:
                pr.update(nearest_site=None, nearest_site_distance_m=None, nearest_site_bearing_deg=None)
            else:
                pr.update(
                    nearest_site=candidates[near.index].key,
                    nearest_site_distance_m=near.distance_m,
                    nearest_site_bearing_deg=near.bearing_deg,
                )
        return features

    # -- best server --

    def best_server(self, scope: Scope, resolution: int) -> list[BestServerCell]:
        """Best server per cell of ``scope`` (:func:`analytics.best_server.best_servers`)."""
        version = self.backend.data_version() if self.cache.ttl_s > 0 else None
        return self.cache.get_or_compute(
            ("best-server", scope, resolution),
            lambda: best_servers(self.backend.cell_samples(scope, resolution=resolution)),
            version=version,
        )

    # -- zone progress --

    def zone_changes(self, scope: Scope, resolution: int, max_class: str) -> list[ZoneChange]:
        """The dead zones of ``scope``'s window against those of the period of equal length before."""
        before = previous_period(scope)
        return compare_zones(
            self.coverage.dead_zones(before, resolution, max_class),
            self.coverage.dead_zones(scope, resolution, max_class),
            cells_before=self.coverage.assessment(before, resolution, max_class),
            cells_after=self.coverage.assessment(scope, resolution, max_class),
        )
