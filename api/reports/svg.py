"""Small maps of H3 cells as inline SVG: no tiles, no scripts, no network; they print as vectors."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from analytics.coverage import cell_polygon


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """Cells drawn in one style: fill and stroke colours, and a label for the SVG title."""

    cells: Iterable[int]
    fill: str
    stroke: str
    label: str


def _project(
    points: Sequence[tuple[float, float]], box: tuple[float, float, float, float], width: float, height: float
) -> list[tuple[float, float]]:
    min_lon, min_lat, max_lon, max_lat = box
    kx = math.cos(math.radians((min_lat + max_lat) / 2.0))
    span_x = max((max_lon - min_lon) * kx, 1e-9)
    span_y = max(max_lat - min_lat, 1e-9)
    scale = min(width / span_x, height / span_y)
    ox = (width - span_x * scale) / 2.0
    oy = (height - span_y * scale) / 2.0
    return [(ox + (lon - min_lon) * kx * scale, height - oy - (lat - min_lat) * scale) for lon, lat in points]


def cell_map(
    layers: Sequence[Layer],
    *,
    outline: Sequence[tuple[float, float]] = (),
    width: int = 240,
    height: int = 180,
    title: str = "",
    pad: float = 0.15,
    min_span_deg: float = 0.006,
) -> str:
    """An ``<svg>`` of the layers' hexagons (and an optional outline ring), fitted to its box."""
    polys = [(layer, [cell_polygon(c) for c in layer.cells]) for layer in layers]
    pts = [p for _, ps in polys for poly in ps for p in poly] + list(outline)
    if not pts:
        return ""
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    # A small zone keeps some surroundings: every map spans at least ``min_span_deg`` (~600 m).
    dx = max((max(lons) - min(lons)) * (1 + 2 * pad), min_span_deg) / 2.0
    dy = max((max(lats) - min(lats)) * (1 + 2 * pad), min_span_deg) / 2.0
    cx, cy = (max(lons) + min(lons)) / 2.0, (max(lats) + min(lats)) / 2.0
    box = (cx - dx, cy - dy, cx + dx, cy + dy)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="#f7f7f4"/>'
    ]
    for layer, ps in polys:
        parts.append(
            f'<g fill="{layer.fill}" stroke="{layer.stroke}" stroke-width="0.6"><title>{escape(layer.label)}</title>'
        )
        for poly in ps:
            ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in _project(poly, box, width, height))
            parts.append(f'<polygon points="{ring}"/>')
        parts.append("</g>")
    if outline:
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in _project(outline, box, width, height))
        parts.append(f'<polygon points="{ring}" fill="none" stroke="#555" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)
