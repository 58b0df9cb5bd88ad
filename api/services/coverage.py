"""Coverage: cell statistics with their classes, dead and interference zones, survey gaps, summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from analytics.coverage import (
    CoverageSummary,
    cell_classes,
    park_cells,
    summarize,
    summary_change,
    survey_gaps,
)
from analytics.deadzones import CellAssessment, DeadZone, DetectOptions, ZoneKind, assess_cells, find_zones
from api import models
from api.cache import ReadCache
from api.exports import iso_ms
from api.live import LiveViews
from settings.api import ApiSettings
from storage.query import CellStats, NetworkRows, QueryBackend, Scope

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Window placeholder of queries over every stored reading (``timed=False``)."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """Cell statistics with their classes and the minimum sample count used."""

    stats: CellStats
    classes: np.ndarray[Any, np.dtype[np.int8]]
    min_samples: int


class CoverageService:
    """Coverage answers over one backend; cell statistics and zones are kept while the data is unchanged."""

    def __init__(
        self,
        settings: ApiSettings,
        backend: QueryBackend,
        cache: ReadCache,
        *,
        registry_parks: Callable[[], Mapping[str, Sequence[Sequence[float]]]] | None = None,
        live: LiveViews | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache
        self.live = live or LiveViews(max_age_s=0, refresh_s=1, keep_s=1)
        self._config_parks = {p.id: [tuple(pt) for pt in p.boundary] for p in settings.parks}
        self._registry_parks = registry_parks

    @property
    def parks(self) -> dict[str, list[tuple[float, ...]]]:
        """Park id → boundary ring ([lon, lat] points): the config's ``[[parks]]``, overlaid by the
        parks created at run time in the registry (``parkwatch park create``, ``PUT /api/v1/parks``)."""
        if self._registry_parks is None:
            return self._config_parks
        merged = dict(self._config_parks)
        merged.update({k: [tuple(pt) for pt in v] for k, v in self._registry_parks().items()})
        return merged

    def _versioned(self, key: Hashable, scope: Scope, compute: Callable[[], T]) -> T:
        # The fingerprint is read before the value is computed (see ReadCache.get_or_compute).
        # It covers the scope's window only: live appends leave the answers of past windows valid.
        # A live view's window is answered as computed (api.live): its staleness is bounded by the
        # view's age, not by the fingerprint, so a late reading does not set off a recomputation.
        if scope.live:
            version: Hashable = ("live", scope.end)
        else:
            version = self.backend.data_version(scope) if self.cache.ttl_s > 0 else None
        return self.cache.get_or_compute(key, compute, version=version)

    def kept_if_live(self, key: Hashable, scope: Scope, build: Callable[[], T]) -> T:
        """``build()``, kept in the cache when ``scope`` is a live view's window (every request
        answered as of its end gets the same value); built every time otherwise."""
        if not scope.live:
            return build()
        return self.cache.get_or_compute(key, build, version=("live", scope.end))

    def warm_live(self, scope: Scope, resolution: int) -> None:
        """Compute what a live view's requests read (cell statistics, the dead-zone test, dead
        zones) for ``scope`` into the cache: the background refresh of :mod:`api.live`."""
        self.cells(scope, resolution)
        self.dead_zones(scope, resolution, self.settings.coverage.dead_zone_max_class)

    def cells(self, scope: Scope, resolution: int) -> Coverage:
        """Cell statistics of ``scope`` at ``resolution`` with their signal classes."""
        stats = self._versioned(
            ("cells", scope, resolution), scope, lambda: self._cell_stats(scope, resolution)
        )
        return Coverage(
            stats=stats, classes=cell_classes(stats), min_samples=self.settings.coverage.min_samples
        )

    def _cell_stats(self, scope: Scope, resolution: int) -> CellStats:
        """Cell statistics of ``scope``; an operator/technology filter is cut from a cached unfiltered answer.

        Rows are grouped by operator and technology, so the rows of the unfiltered answer that
        match the filter are exactly the filtered answer: no second query while it is cached.
        """
        if scope.operator is not None or scope.tech is not None:
            unfiltered = self.cache.get(("cells", replace(scope, operator=None, tech=None), resolution))
            if unfiltered is not None:
                keep = np.ones(len(unfiltered), dtype=bool)
                if scope.operator is not None:
                    # The backends match the operator without regard to case.
                    wanted = scope.operator.lower()
                    keep &= np.array([str(o).lower() == wanted for o in unfiltered.operator], dtype=bool)
                if scope.tech is not None:
                    keep &= unfiltered.tech == scope.tech
                cut: CellStats = unfiltered.take(keep)
                return cut
        return self.backend.cell_stats(scope, resolution=resolution)

    def networks(self, scope: Scope, *, timed: bool = True) -> NetworkRows:
        """Operators and technologies with readings per park (``timed=False``: ever stored)."""
        key_scope = scope if timed else replace(scope, start=EPOCH, end=EPOCH)
        return self.cache.get_or_compute(
            ("networks", key_scope, timed), lambda: self.backend.networks(scope, timed=timed)
        )

    def operators(self, scope: Scope) -> models.OperatorList:
        """Per park, the networks with readings ever and the newest reading of each."""
        parks: dict[str, models.ParkNetworks] = {}
        for r in self.networks(scope, timed=False).rows():
            entry = parks.setdefault(
                r["park"],
                models.ParkNetworks(park=r["park"], latest=None, networks=[], operators=[], technologies=[]),
            )
            latest = iso_ms(r["last_ms"])
            entry.networks.append(
                models.Network(operator=r["operator"], tech=r["tech"], samples=r["samples"], latest=latest)
            )
            entry.latest = max(entry.latest or "", latest)
        for entry in parks.values():
            entry.operators = sorted({n.operator for n in entry.networks})
            entry.technologies = sorted({n.tech for n in entry.networks})
        return models.OperatorList(items=[parks[k] for k in sorted(parks)])

    def latest_ms(self, scope: Scope) -> int | None:
        """Time of the newest cellular reading of the scope's parks, operator and technology, ever."""
        rows = self.networks(scope, timed=False)
        return int(rows.last_ms.max()) if len(rows) else None

    def park_known(self, park: str) -> bool:
        """Whether ``park`` is configured or has ever had a cellular reading."""
        if park in self.parks:
            return True
        return len(self.networks(Scope(parks=(park,), start=EPOCH, end=EPOCH), timed=False)) > 0

    def assessment(self, scope: Scope, resolution: int, max_class: str) -> CellAssessment:
        """The dead-zone test of every cell of ``scope`` (:func:`analytics.deadzones.assess_cells`)."""
        cov = self.settings.coverage
        options = DetectOptions(
            max_class=max_class,
            confidence=cov.dead_zone_confidence,
            gnss_error_m=cov.gnss_error_m,
            reference_offsets_db=tuple(sorted(cov.reference_offsets_db.items())),
        )

        def compute() -> CellAssessment:
            return assess_cells(self.backend.cell_samples(scope, resolution=resolution), options=options)

        return self._versioned(("assess", scope, resolution, options), scope, compute)

    def dead_zones(
        self, scope: Scope, resolution: int, max_class: str, kind: ZoneKind = "dead"
    ) -> list[DeadZone]:
        """Dead zones (or interference zones), largest first."""

        def compute() -> list[DeadZone]:
            # Inside: the data fingerprint is read before the cells it is computed from.
            return find_zones(self.assessment(scope, resolution, max_class), kind=kind)

        return self._versioned(("zones", scope, resolution, max_class, kind), scope, compute)

    def gaps(self, scope: Scope, resolution: int) -> list[tuple[str, int]]:
        """(park, cell) of every configured park cell without samples, for the scope's parks."""
        cov = self.cells(scope, resolution)
        out: list[tuple[str, int]] = []
        for park_id, boundary in sorted(self.parks.items()):
            if not boundary or (scope.parks is not None and park_id not in scope.parks):
                continue
            measured = {int(c) for c, p in zip(cov.stats.h3, cov.stats.park, strict=True) if p == park_id}
            out += [(park_id, c) for c in survey_gaps(park_cells(boundary, resolution), measured)]
        return out

    def summary(self, scope: Scope, resolution: int, max_class: str) -> list[models.CoverageSummaryItem]:
        """Per (park, operator, technology): coverage in the window and its change since the window before."""
        length = scope.end - scope.start
        prev_scope = Scope(
            parks=scope.parks,
            start=scope.start - length,
            end=scope.start,
            operator=scope.operator,
            tech=scope.tech,
            bbox=scope.bbox,
        )
        current = self._summaries(scope, resolution, max_class)
        previous = self._summaries(prev_scope, resolution, max_class)
        out = []
        for key, s in sorted(current.items()):
            change = summary_change(s, previous.get(key))
            out.append(
                models.CoverageSummaryItem(
                    **s.as_dict(), change=None if change is None else models.SummaryChange(**change)
                )
            )
        return out

    def _summaries(
        self, scope: Scope, resolution: int, max_class: str
    ) -> dict[tuple[str, str, str], CoverageSummary]:
        cov = self.cells(scope, resolution)
        zones = self.dead_zones(scope, resolution, max_class)
        zone_areas: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for z in zones:
            zone_areas[(z.park, z.operator, z.tech)].append(z.area_m2)
        s = cov.stats
        keys = sorted({(str(p), str(o), str(t)) for p, o, t in zip(s.park, s.operator, s.tech, strict=True)})
        out: dict[tuple[str, str, str], CoverageSummary] = {}
        parks = self.parks
        for key in keys:
            m = (s.park == key[0]) & (s.operator == key[1]) & (s.tech == key[2])
            boundary = parks.get(key[0])
            out[key] = summarize(
                park=key[0],
                operator=key[1],
                tech=key[2],
                cells=s.h3[m],
                classes=cov.classes[m],
                sufficient=s.samples[m] >= cov.min_samples,
                dead_zone_areas_m2=zone_areas.get(key, []),
                park_cell_set=park_cells(boundary, resolution) if boundary else None,
            )
        return out
