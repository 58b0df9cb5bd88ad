"""Enrichment: the H3 cell of each reading, from its own position or its gateway's configured one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import h3.api.basic_int as h3i

try:
    # What h3i.latlng_to_cell calls, without its two Python calls around it (about 2 % of a
    # one-reading message's path); the same function with the same checks and errors.
    from h3._cy import latlng_to_cell as _latlng_to_cell
except ImportError:  # pragma: no cover - another layout of the h3 package
    _latlng_to_cell = h3i.latlng_to_cell

from contract.readings import Reading
from settings.ingest import GatewayPosition

_CACHE_MAX = 100_000


class CellLocator:
    """H3 cells at one resolution, as unsigned 64-bit integers (0 = no position).

    Args:
        resolution: H3 resolution (0-15); 10 gives cells of about 15,000 m².
        gateway_positions: gateway id → fixed position, for readings without coordinates.
    """

    def __init__(
        self, resolution: int, gateway_positions: Mapping[str, GatewayPosition] | None = None
    ) -> None:
        self.resolution = resolution
        self._static = {gw: (p.lat, p.lon) for gw, p in (gateway_positions or {}).items()}
        self._gateway_cells: dict[str, int] = {}
        self.set_registered({})
        self._cache: dict[tuple[float, float], int] = {}

    def set_registered(self, positions: Mapping[str, tuple[float, float]]) -> None:
        """Gateway positions from the registry (lat, lon); they win over the configured ones."""
        merged = {**self._static, **positions}
        self._gateway_cells = {
            gw: h3i.latlng_to_cell(lat, lon, self.resolution) for gw, (lat, lon) in merged.items()
        }

    def cell(self, lat: float, lon: float) -> int:
        """The cell of one position (stationary probes repeat positions: cached)."""
        key = (lat, lon)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            found = self._cache[key] = h3i.latlng_to_cell(lat, lon, self.resolution)
        return found

    def cells(self, gw: str, readings: Sequence[Reading]) -> list[int]:
        """One cell per reading: its own position, else its gateway's, else 0."""
        cache = self._cache
        out = []
        for r in readings:
            lat, lon = r.lat, r.lon
            if lat is None or lon is None:
                out.append(self._gateway_cells.get(gw, 0))
                continue
            # cell() inline: a call per reading costs about what the cache lookup does.
            key = (lat, lon)
            found = cache.get(key)
            if found is None:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                found = cache[key] = _latlng_to_cell(lat, lon, self.resolution)
            out.append(found)
        return out
