"""Predicted coverage and survey plans over the coverage service's readings and assessment."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from analytics.coverage import park_cells
from analytics.prediction import (
    MIN_CELLS,
    PredictedLayer,
    PredictOptions,
    Validation,
    observations,
    predict_layer,
)
from analytics.signal import DEFAULT_PROFILE
from analytics.survey_plan import SurveyPlan, plan_survey
from api.services.coverage import CoverageService
from storage.query import Scope

T = TypeVar("T")
SitesOf = Callable[[str, str, str], Sequence[tuple[float, float]]]
"""(park, operator, tech) -> ``(lon, lat)`` of the operator's cell sites for that technology."""


class PredictionService:
    """Predicted layers and survey plans; kept in the read cache while the data is unchanged.

    ``sites_of`` gives the cell sites of a layer for the log-distance trend; without it (or when it
    has none for a layer) the trend is a plane.
    """

    def __init__(
        self,
        coverage: CoverageService,
        *,
        sites_of: SitesOf | None = None,
        options: PredictOptions | None = None,
    ) -> None:
        self.coverage = coverage
        self.sites_of = sites_of
        self.options = options or PredictOptions()

    def _versioned(self, key: Hashable, compute: Callable[[], T]) -> T:
        cache = self.coverage.cache
        version = self.coverage.backend.data_version() if cache.ttl_s > 0 else None
        return cache.get_or_compute(key, compute, version=version)

    def layers(self, scope: Scope, resolution: int, max_class: str) -> list[PredictedLayer]:
        """One predicted layer per (park, operator, technology) of ``scope`` with enough measured cells."""
        return self._versioned(
            ("predicted", scope, resolution, max_class, self.options),
            lambda: self._layers(scope, resolution, max_class),
        )

    def _layers(self, scope: Scope, resolution: int, max_class: str) -> list[PredictedLayer]:
        assessment = self.coverage.assessment(scope, resolution, max_class)
        samples = self.coverage.backend.cell_samples(scope, resolution=resolution)
        parks: Mapping[str, Sequence[Sequence[float]]] = self.coverage.parks
        out: list[PredictedLayer] = []
        for (park, operator, tech), obs in sorted(observations(samples, offsets=assessment.offsets).items()):
            if tech not in DEFAULT_PROFILE.techs or len(obs) < MIN_CELLS:
                continue
            boundary = parks.get(park)
            sites = self.sites_of(park, operator, tech) if self.sites_of is not None else None
            out.append(
                predict_layer(
                    obs,
                    park=park,
                    operator=operator,
                    tech=tech,
                    threshold_dbm=DEFAULT_PROFILE.thresholds(tech).dead_threshold_dbm(max_class),
                    park_cells=park_cells(boundary, resolution) if boundary else None,
                    sites=sites or None,
                    options=self.options,
                )
            )
        return out

    def plans(self, scope: Scope, resolution: int, max_class: str, max_waypoints: int) -> list[SurveyPlan]:
        """The survey plan of every predicted layer of ``scope``."""

        def compute() -> list[SurveyPlan]:
            a = self.coverage.assessment(scope, resolution, max_class)
            out = []
            for layer in self.layers(scope, resolution, max_class):
                rows = (
                    (a.park == layer.park)
                    & (a.operator == layer.operator)
                    & (a.tech == layer.tech)
                    & (a.state == "uncertain")
                )
                uncertain = a.h3[np.flatnonzero(rows)].tolist()
                out.append(plan_survey(layer, max_waypoints=max_waypoints, uncertain_measured=uncertain))
            return out

        return self._versioned(
            ("survey-plan", scope, resolution, max_class, max_waypoints, self.options), compute
        )


def pooled_validation(layers: Sequence[PredictedLayer]) -> Validation:
    """One validation over several layers: figures weighted by their held-out cells."""
    vals = [layer.validation for layer in layers if layer.validation.cells > 0]
    if len(layers) == 1 or not vals:
        return (
            layers[0].validation
            if layers
            else Validation(
                method="none: no layer with enough measured cells",
                folds=0,
                cells=0,
                rmse_db=None,
                bias_db=None,
                interval_coverage=None,
                idw_rmse_db=None,
            )
        )
    n = np.array([v.cells for v in vals], dtype=np.float64)

    def mean(xs: list[float | None], square: bool = False) -> float:
        a = np.array([np.nan if x is None else x for x in xs], dtype=np.float64)
        if square:
            return float(np.sqrt(np.nansum(n * a**2) / n.sum()))
        return float(np.nansum(n * a) / n.sum())

    return Validation(
        method=f"{vals[0].method}, pooled over {len(vals)} layers",
        folds=max(v.folds for v in vals),
        cells=int(n.sum()),
        rmse_db=mean([v.rmse_db for v in vals], square=True),
        bias_db=mean([v.bias_db for v in vals]),
        interval_coverage=mean([v.interval_coverage for v in vals]),
        idw_rmse_db=mean([v.idw_rmse_db for v in vals], square=True),
    )
