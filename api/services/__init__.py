"""The read logic of the API, one module per concern, over one query backend and one read cache.

Blocking (the routes run it in worker threads). Each service turns backend tables into the typed
answers of :mod:`api.models`:

| module | answers |
|---|---|
| ``coverage`` | coverage cells, dead and interference zones, survey gaps, summary, networks |
| ``broadband`` | broadband quality per gateway or park against the targets |
| ``factory`` | machines, OEE, energy |
| ``fleet`` | gateways: last seen, online, reported figures, loss ledger |
| ``alarms`` | which sources each alarm rule holds for (the evaluator makes alarms of them) |
| ``sites`` | cell sites, best server, dead-zone changes between two periods |
| ``prediction`` | predicted coverage with intervals and validation, survey plans |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from api.cache import ReadCache
from api.live import LiveViews, utc_now
from api.services.alarms import AlarmConditions
from api.services.broadband import BroadbandService
from api.services.coverage import CoverageService
from api.services.factory import FactoryService
from api.services.fleet import FleetService
from api.services.prediction import PredictionService
from api.services.sites import SitesService
from settings.api import ApiSettings
from storage.cell_sites import CellSites
from storage.query import QueryBackend


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Every read service of the API, sharing one backend and one cache."""

    backend: QueryBackend
    """The store they read (routes with no service of their own, e.g. dead letters, read it too)."""
    cache: ReadCache
    coverage: CoverageService
    broadband: BroadbandService
    factory: FactoryService
    fleet: FleetService
    alarms: AlarmConditions
    sites: SitesService
    prediction: PredictionService

    @classmethod
    def build(
        cls,
        settings: ApiSettings,
        backend: QueryBackend,
        *,
        registry_parks: Callable[[], Mapping[str, Sequence[Sequence[float]]]] | None = None,
        sites_path: str = ":memory:",
        clock: Callable[[], datetime] = utc_now,
    ) -> Services:
        """The services over ``backend``; raises ``ConfigError`` for an alarm rule on no numeric field.

        ``registry_parks`` reads the parks created at run time (id → boundary ring), which the
        coverage answers use beside the config's ``[[parks]]``. ``sites_path`` is the SQLite file
        of the imported cell sites (the registry file; in memory by default). ``clock`` is "now"
        of the requests without ``to`` (live views, :mod:`api.live`).
        """
        cache = ReadCache(settings.api.cache_ttl_s, stale_s=settings.api.cache_stale_s)
        fleet = FleetService(settings, backend)
        opts = settings.api
        live = LiveViews(
            max_age_s=opts.live_max_age_s if opts.cache_ttl_s > 0 else 0.0,
            refresh_s=opts.live_refresh_s,
            keep_s=opts.live_keep_s,
            clock=clock,
        )
        coverage = CoverageService(settings, backend, cache, registry_parks=registry_parks, live=live)
        sites = SitesService(settings, backend, cache, coverage, CellSites(sites_path))
        return cls(
            backend=backend,
            cache=cache,
            coverage=coverage,
            broadband=BroadbandService(settings, backend, cache),
            factory=FactoryService(settings, backend, cache),
            fleet=fleet,
            alarms=AlarmConditions(settings, backend, fleet, coverage),
            sites=sites,
            prediction=PredictionService(coverage, sites_of=sites.sites_of),
        )


__all__ = [
    "AlarmConditions",
    "BroadbandService",
    "CoverageService",
    "FactoryService",
    "FleetService",
    "PredictionService",
    "Services",
    "SitesService",
]
