"""Time series for the dashboard's charts: factory KPIs per time bucket, a gateway's status history.

Each bucket is answered by the same service call as the whole-window figures
(:meth:`FactoryService.oee`, :meth:`FactoryService.energy`) over that bucket's window, so a point
of a chart and a row of the table for the same window are computed one way. The number of buckets
is bounded (:data:`MAX_BUCKETS`): a chart needs no more, and each bucket is one backend read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from api import models
from api.services.common import as_float, as_int
from api.services.factory import FactoryService
from storage.query import QueryBackend, Scope

_P = TypeVar("_P", models.OeePoint, models.EnergyPoint)

MAX_BUCKETS: Final = 48
"""The most buckets one series answer holds."""
DEFAULT_BUCKETS: Final = 24
"""The most buckets of a series when no step is asked for."""


class SeriesError(ValueError):
    """A step that makes more than :data:`MAX_BUCKETS` buckets of the window."""


NICE_STEPS_S: Final = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
"""Default bucket lengths: the shortest of these that makes at most :data:`DEFAULT_BUCKETS`."""


def step_for(start: datetime, end: datetime, step_s: int | None) -> int:
    """The bucket length: ``step_s`` if given and it yields at most :data:`MAX_BUCKETS` buckets,
    else the shortest of :data:`NICE_STEPS_S` making at most :data:`DEFAULT_BUCKETS` buckets.

    Raises:
        SeriesError: ``step_s`` splits the window into more than :data:`MAX_BUCKETS` buckets.
    """
    span_s = (end - start).total_seconds()
    if step_s is None:
        return next((s for s in NICE_STEPS_S if span_s / s <= DEFAULT_BUCKETS), NICE_STEPS_S[-1])
    if math.ceil(span_s / step_s) > MAX_BUCKETS:
        shortest = math.ceil(span_s / MAX_BUCKETS)
        raise SeriesError(
            f"step_s={step_s} makes {math.ceil(span_s / step_s)} buckets of the window; "
            f"at most {MAX_BUCKETS}: use step_s >= {shortest} or a shorter window"
        )
    return step_s


def buckets(start: datetime, end: datetime, step_s: int) -> list[tuple[datetime, datetime]]:
    """Consecutive ``[a, b)`` windows of ``step_s`` from ``start``; the last one ends at ``end``."""
    out = []
    a = start
    step = timedelta(seconds=step_s)
    while a < end:
        b = min(a + step, end)
        out.append((a, b))
        a = b
    return out


def _key(row: models.OeeRow | models.EnergyRow, level: str) -> tuple[str, ...]:
    names = {"park": 1, "factory": 2, "line": 3}[level]
    return tuple(str(getattr(row, n)) for n in ("park", "factory", "line")[:names])


def _where(key: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(("park", "factory", "line"), key, strict=False))


def oee_series(factory: FactoryService, scope: Scope, level: str, step_s: int) -> list[models.OeeSeriesItem]:
    """Availability, performance, quality and OEE per bucket for each group at ``level``
    (``line``, ``factory`` or ``park``); a bucket where a group has no figures is null."""
    points: dict[tuple[str, ...], list[models.OeePoint]] = defaultdict(list)
    spans = buckets(scope.start, scope.end, step_s)
    for a, b in spans:
        rows = {_key(r, level): r for r in factory.oee(replace(scope, start=a, end=b), level)}
        for key, r in rows.items():
            points[key].append(
                models.OeePoint(
                    t_ms=int(a.timestamp() * 1000),
                    availability=r.availability,
                    performance=r.performance,
                    quality=r.quality,
                    oee=r.oee,
                )
            )
    return [
        models.OeeSeriesItem(**_where(k), points=_filled(points[k], spans, _no_oee)) for k in sorted(points)
    ]


def energy_series(
    factory: FactoryService, scope: Scope, level: str, step_s: int
) -> list[models.EnergySeriesItem]:
    """Energy (kWh) and peak demand (kW) per bucket for each group at ``level``."""
    points: dict[tuple[str, ...], list[models.EnergyPoint]] = defaultdict(list)
    spans = buckets(scope.start, scope.end, step_s)
    for a, b in spans:
        for r in factory.energy(replace(scope, start=a, end=b), level):
            points[_key(r, level)].append(
                models.EnergyPoint(t_ms=int(a.timestamp() * 1000), energy_kwh=r.energy_kwh, peak_kw=r.peak_kw)
            )
    return [
        models.EnergySeriesItem(**_where(k), points=_filled(points[k], spans, _no_energy))
        for k in sorted(points)
    ]


def _no_oee(t_ms: int) -> models.OeePoint:
    return models.OeePoint(t_ms=t_ms, availability=None, performance=None, quality=None, oee=None)


def _no_energy(t_ms: int) -> models.EnergyPoint:
    return models.EnergyPoint(t_ms=t_ms, energy_kwh=None, peak_kw=None)


def _filled(got: list[_P], spans: list[tuple[datetime, datetime]], empty: Callable[[int], _P]) -> list[_P]:
    """One point per bucket, in order: the buckets a group had no figures in become nulls."""
    by_t = {p.t_ms: p for p in got}
    return [by_t.get(t_ms) or empty(t_ms) for t_ms in (int(a.timestamp() * 1000) for a, _ in spans)]


MAX_STATUS_POINTS: Final = 2000
"""The most status reports one history answer holds (evenly thinned beyond)."""


def status_history(
    backend: QueryBackend, scope: Scope, gw: str, max_points: int = MAX_STATUS_POINTS
) -> dict[str, tuple[int, list[models.StatusPoint]]]:
    """Per park: (count, status reports of gateway ``gw`` in the window, oldest first, evenly
    thinned to ``max_points``)."""
    rows = sorted(backend.status(replace(scope, gw=gw), latest=False).rows(), key=lambda r: int(r["ts_ms"]))
    by_park: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["gw"] == gw:
            by_park[str(r["park"])].append(r)
    out = {}
    for park, got in by_park.items():
        keep = (
            got
            if len(got) <= max_points
            else [got[round(i * (len(got) - 1) / (max_points - 1))] for i in range(max_points)]
        )
        out[park] = (
            len(got),
            [
                models.StatusPoint(
                    ts_ms=int(r["ts_ms"]),
                    state=r["state"],
                    backlog=as_int(r["backlog"]),
                    buffer_pct=as_float(r["buffer_pct"]),
                    uplink_operator=r["uplink_operator"],
                    uplink_tech=r["uplink_tech"],
                    uplink_rsrp_dbm=as_float(r["uplink_rsrp_dbm"]),
                    uplink_sinr_db=as_float(r["uplink_sinr_db"]),
                )
                for r in keep
            ],
        )
    return out
