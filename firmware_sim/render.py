"""Render the true coverage map of a scenario as a PNG: one panel per park and (operator, tech).

Each pixel takes the true class of its H3 cell (the class at the cell centre, as in
:mod:`firmware_sim.truth`); outside the park boundary the colours are faded. Black squares are the
operator's sites carrying that technology, blue squares fixed gateways, blue dots probe routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import h3
import numpy as np
import numpy.typing as npt

from analytics.signal import CLASS_INDEX, CLASS_NAMES, classify
from firmware_sim.png import draw_text, text_width, write_png
from firmware_sim.radio.bands import BANDS
from firmware_sim.radio.environment import RadioEnvironment
from firmware_sim.radio.propagation import points_in_polygon
from firmware_sim.scenario import Scenario
from firmware_sim.truth import GroundTruth
from firmware_sim.world import route_position

COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "none": (170, 20, 30),
    "poor": (240, 120, 40),
    "fair": (245, 215, 70),
    "good": (130, 200, 90),
    "excellent": (25, 120, 60),
}
_PALETTE: Final = np.array([COLORS[n] for n in CLASS_NAMES], dtype=np.float64)
_BG: Final = (255, 255, 255)
_INK: Final = (30, 30, 30)
_BLUE: Final = (30, 70, 200)


def _panel(
    scenario: Scenario,
    env: RadioEnvironment,
    park_index: int,
    operator: str,
    tech: str,
    m_per_px: float,
    margin_m: float,
) -> npt.NDArray[np.uint8]:
    park = scenario.parks[park_index]
    proj = env.projection
    bx, by = proj.to_xy([p[0] for p in park.boundary], [p[1] for p in park.boundary])
    x0, x1 = float(bx.min() - margin_m), float(bx.max() + margin_m)
    y0, y1 = float(by.min() - margin_m), float(by.max() + margin_m)
    w = int((x1 - x0) / m_per_px)
    h = int((y1 - y0) / m_per_px)
    xs = x0 + (np.arange(w) + 0.5) * m_per_px
    ys = y1 - (np.arange(h) + 0.5) * m_per_px
    gx, gy = np.meshgrid(xs, ys)
    lat, lon = proj.to_latlon(gx.ravel(), gy.ravel())
    res = 10
    cells = [h3.latlng_to_cell(a, b, res) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
    uniq, inverse = np.unique(np.array(cells), return_inverse=True)
    centres = np.array([h3.cell_to_latlng(c) for c in uniq.tolist()])
    m = env.measure(centres[:, 0], centres[:, 1], operator=operator, tech=tech)
    no_service = np.isnan(m.rsrp_dbm)
    cls = classify(np.where(no_service, -156.0, m.rsrp_dbm), m.sinr_db, tech=tech)
    cls[no_service] = CLASS_INDEX["none"]
    rgb = _PALETTE[cls[inverse]].reshape(h, w, 3)
    inside = points_in_polygon(gx.ravel(), gy.ravel(), bx, by).reshape(h, w)
    rgb[~inside] = rgb[~inside] * 0.35 + 255 * 0.65
    img = rgb.astype(np.uint8)

    def mark(lat_: float, lon_: float, color: tuple[int, int, int], r: int) -> None:
        px, py = proj.to_xy(lat_, lon_)
        c = int((float(px) - x0) / m_per_px)
        rr = int((y1 - float(py)) / m_per_px)
        if -r <= c < w + r and -r <= rr < h + r:
            img[max(0, rr - r) : rr + r + 1, max(0, c - r) : c + r + 1] = color

    op = scenario.operator(operator)
    for site in op.sites:
        if any(BANDS[b].tech == tech for b in site.carriers):
            mark(site.lat, site.lon, _INK, 3)
    for gw in park.gateways:
        if gw.route is not None:
            step = 400.0 / (gw.route.speed_kmh / 3.6) / 20
            for k in range(2000):
                a, b, _ = route_position(gw.route, k * step)
                mark(a, b, _BLUE, 0)
        else:
            mark(gw.lat, gw.lon, _BLUE, 2)
    return img


def render_coverage(
    scenario: Scenario,
    path: str | Path,
    *,
    env: RadioEnvironment | None = None,
    truth: GroundTruth | None = None,
    m_per_px: float = 12.0,
    margin_m: float = 300.0,
) -> None:
    """Write the coverage atlas PNG: columns are parks, rows are (operator, tech) layers."""
    env = env or RadioEnvironment(scenario)
    layers = list(truth.layers) if truth is not None else env.layers()
    panels = [
        [_panel(scenario, env, pi, op, tech, m_per_px, margin_m) for pi in range(len(scenario.parks))]
        for op, tech in layers
    ]
    gap = 8
    label_w = max(text_width(f"{op} {tech}") for op, tech in layers) + 2 * gap
    col_w = [max(panels[r][c].shape[1] for r in range(len(layers))) for c in range(len(scenario.parks))]
    row_h = [max(p.shape[0] for p in row) for row in panels]
    head_h = 40
    legend_h = 40
    width = label_w + sum(col_w) + gap * (len(col_w) + 1)
    height = head_h + sum(row_h) + gap * len(row_h) + legend_h
    img = np.full((height, width, 3), _BG, dtype=np.uint8)
    draw_text(
        img, gap, 8, f"true coverage - scenario {scenario.name} - seed {scenario.sim.seed} - h3 res 10", _INK
    )
    x = label_w + gap
    for c, park in enumerate(scenario.parks):
        draw_text(img, x, 24, park.id, _INK)
        x += col_w[c] + gap
    y = head_h
    for r, (op, tech) in enumerate(layers):
        draw_text(img, gap, y + row_h[r] // 2 - 5, f"{op} {tech}", _INK)
        x = label_w + gap
        for c in range(len(scenario.parks)):
            p = panels[r][c]
            img[y : y + p.shape[0], x : x + p.shape[1]] = p
            x += col_w[c] + gap
        y += row_h[r] + gap
    x = label_w + gap
    for name in reversed(CLASS_NAMES):
        img[y + 8 : y + 24, x : x + 24] = COLORS[name]
        draw_text(img, x + 30, y + 11, name, _INK)
        x += 30 + text_width(name) + 3 * gap
    img[y + 12 : y + 19, x : x + 7] = _INK
    draw_text(img, x + 14, y + 11, "site", _INK)
    x += 14 + text_width("site") + 3 * gap
    img[y + 12 : y + 17, x : x + 5] = _BLUE
    draw_text(img, x + 14, y + 11, "gateway / probe route", _INK)
    write_png(path, img)
