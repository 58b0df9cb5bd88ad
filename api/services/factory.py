"""Factory: machine production and OEE, meter energy and peak demand, booked to factory and line."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeVar

import numpy as np

from analytics.factory import EnergyUse, Production, group_peak_kw, machine_production, meter_energy, rollup
from api import models
from api.cache import ReadCache
from api.services.common import groups
from settings.api import ApiSettings, MachineSettings, MeterSettings
from storage.query import MachineBuckets, QueryBackend, Scope

_P = TypeVar("_P", MachineSettings, MeterSettings)
_NAMES = ("park", "factory", "line", "gw", "dev")
_MACHINE_WIDTH = {"machine": 5, "line": 3, "factory": 2, "park": 1}
_METER_WIDTH = {"meter": 5, "line": 3, "factory": 2, "park": 1}


class FactoryService:
    """Factory answers over one backend."""

    def __init__(self, settings: ApiSettings, backend: QueryBackend, cache: ReadCache) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache

    def _machine_buckets(self, scope: Scope) -> MachineBuckets:
        f = self.settings.factory
        b: MachineBuckets = self.cache.get_or_compute(
            ("machine", scope), lambda: self.backend.machine_buckets(scope, bucket_s=f.state_bucket_s)
        )
        return b

    def machines(self, scope: Scope) -> list[tuple[tuple[str, str, str, str, str], Production]]:
        """((park, factory, line, gw, dev), production) per machine seen in the window."""
        f = self.settings.factory
        b = self._machine_buckets(scope)
        meta = _placements(f.machines)
        start_ms = int(scope.start.timestamp() * 1000)
        end_ms = int(scope.end.timestamp() * 1000)
        out = []
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            m = meta.get((park, gw, dev)) or meta.get((park, "", dev))
            prod = machine_production(
                ts_ms=b.bucket_ms[idx],
                states=b.state[idx],
                parts_total=np.column_stack([b.parts_total_min[idx], b.parts_total_max[idx]]).ravel(),
                rejects_total=np.column_stack([b.rejects_total_min[idx], b.rejects_total_max[idx]]).ravel(),
                ideal_cycle_s=None if m is None else m.ideal_cycle_s,
                start_ms=start_ms,
                end_ms=end_ms,
                max_hold_ms=max(f.max_hold_s, f.state_bucket_s) * 1000,
            )
            factory, line = _factory_line(m, gw)
            out.append(((park, factory, line, gw, dev), prod))
        return out

    def machine_list(self, scope: Scope) -> list[models.MachineRow]:
        """Per machine: its production figures plus its last known state and when it was seen."""
        b = self._machine_buckets(scope)
        last: dict[tuple[str, str, str], tuple[str | None, int]] = {}
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            states = [x for x in b.state[idx].tolist() if x is not None]
            last[(park, gw, dev)] = (states[-1] if states else None, int(b.bucket_ms[idx][-1]))
        out = []
        for key, prod in sorted(self.machines(scope)):
            state, seen = last[(key[0], key[3], key[4])]
            out.append(
                models.MachineRow(**_where(_NAMES, key), state=state, last_bucket_ms=seen, **prod.as_dict())
            )
        return out

    def oee(self, scope: Scope, level: str) -> list[models.OeeRow]:
        """Production figures per machine, line, factory or park."""
        width = _MACHINE_WIDTH[level]
        totals = rollup((key[:width], prod) for key, prod in self.machines(scope))
        return [models.OeeRow(**_where(_NAMES[:width], k), **p.as_dict()) for k, p in sorted(totals.items())]

    def energy(self, scope: Scope, level: str) -> list[models.EnergyRow]:
        """Energy and peak demand per meter, line, factory or park."""
        f = self.settings.factory
        b = self.cache.get_or_compute(
            ("energy", scope), lambda: self.backend.energy_buckets(scope, bucket_s=f.demand_interval_s)
        )
        meta = _placements(f.meters)
        width = _METER_WIDTH[level]
        uses: dict[tuple[str, ...], EnergyUse] = {}
        members: dict[tuple[str, ...], list[np.ndarray[Any, Any]]] = defaultdict(list)
        for (park, gw, dev), idx in groups(b.park, b.gw, b.dev).items():
            m = meta.get((park, gw, dev)) or meta.get((park, "", dev))
            factory, line = _factory_line(m, gw)
            key = (park, factory, line, gw, dev)[:width]
            use = meter_energy(
                bucket_ms=b.bucket_ms[idx],
                mean_power_kw=b.power_mean_kw[idx],
                energy_min_kwh=b.energy_min_kwh[idx],
                energy_max_kwh=b.energy_max_kwh[idx],
                bucket_s=f.demand_interval_s,
            )
            uses[key] = uses[key] + use if key in uses else use
            members[key].append(idx)
        out = []
        for key in sorted(uses):
            idx = np.concatenate(members[key])
            peak = group_peak_kw(b.bucket_ms[idx], b.power_mean_kw[idx])
            out.append(
                models.EnergyRow(
                    **_where(_NAMES[:width], key),
                    energy_kwh=round(uses[key].energy_kwh, 3),
                    peak_kw=None if peak is None else round(peak, 3),
                    demand_interval_s=f.demand_interval_s,
                )
            )
        return out


def _where(names: tuple[str, ...], key: tuple[str, ...]) -> dict[str, Any]:
    """The placement keys of a row: ``park`` and as many of factory, line, gw, dev as its level has."""
    return dict(zip(names, key, strict=True))


def _placements(table: list[_P]) -> dict[tuple[str, str, str], _P]:
    """``(park, gw, dev)`` → placement; ``gw`` is ``""`` for an entry that names no gateway.

    A device id is unique on its gateway, not in its park (two gateways may each read a
    ``meter-1``), so an entry with ``gw`` belongs to that gateway's device only; the caller tries
    the exact key first and the gateway-less one second.
    """
    return {(m.park, m.gw, m.dev): m for m in table}


def _factory_line(m: MachineSettings | MeterSettings | None, gw: str) -> tuple[str, str]:
    """Where a device is booked; without a ``[[factory.*]]`` entry, its gateway is its factory.

    One gateway usually serves one hall or factory, so it is the natural grouping of devices
    that nobody placed; the line stays empty rather than a made-up name.
    """
    if m is None:
        return gw, ""
    return m.factory or gw, m.line
