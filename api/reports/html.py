"""The coverage report as one self-contained HTML page (inline CSS and SVG) that prints well.

Three printed pages: the coverage figures and the change since the previous period; the dead
zones with their status and maps; the survey gaps and the broadband lines. ``@page`` sets A4 with
margins, sections start on a new page, and tables and zone cards do not break across pages.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Final

from analytics.signal import CLASS_NAMES
from analytics.zone_changes import STATUSES
from api.reports.data import ReportData, ZoneRow
from api.reports.i18n import Lang, hectares, number, percent, signed, t
from api.reports.svg import Layer, cell_map

MAX_ZONES: Final = 24
"""Zone cards in the report (largest first); the rest are counted, and listed by the API."""

CSS: Final = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.4 "DejaVu Sans", "Noto Sans", Arial, sans-serif; color: #1d1d1b; margin: 0 auto;
       max-width: 190mm; padding: 8mm; }
h1 { font-size: 18pt; margin: 0 0 4pt; }
h2 { font-size: 13pt; margin: 14pt 0 6pt; border-bottom: 1.5pt solid #1d5c8c; padding-bottom: 2pt; }
p.note { color: #555; margin: 0 0 6pt; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 1pt 10pt; margin: 0 0 8pt; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt; break-inside: avoid; }
th, td { border: 0.5pt solid #bbb; padding: 2pt 4pt; text-align: right; vertical-align: top; }
th:first-child, td:first-child, th.l, td.l { text-align: left; }
td.c { text-align: center; }
td { white-space: nowrap; }
table.coverage { font-size: 8.5pt; }
thead th { background: #e8eef3; }
.zones { display: grid; grid-template-columns: 1fr 1fr; gap: 6pt; }
.zone { border: 0.5pt solid #bbb; padding: 4pt; break-inside: avoid; }
.zone h3 { font-size: 10.5pt; margin: 0 0 2pt; }
.zone table { font-size: 9pt; margin: 2pt 0 0; }
.badge { display: inline-block; padding: 0 4pt; border-radius: 3pt; color: #fff; font-size: 9pt; }
.st-new { background: #b3261e; } .st-grown { background: #d0561b; } .st-persisting { background: #8a6d00; }
.st-shrunk { background: #2f7d32; } .st-resolved { background: #1b5e20; } .st-not_resurveyed { background: #666; }
.legend span { display: inline-block; margin-right: 8pt; font-size: 9pt; }
.legend i { display: inline-block; width: 9pt; height: 9pt; margin-right: 2pt; vertical-align: -1pt; }
svg.map { display: block; max-width: 100%; height: auto; }
section.page { break-before: page; }
@media screen { body { background: #fff; } section.page { border-top: 1px dashed #ccc; margin-top: 12pt; } }
"""

NOW_FILL: Final = "#d32f2f"
BEFORE_FILL: Final = "#f4b4b0"
CLEARED_FILL: Final = "#66bb6a"
GAP_FILL: Final = "#bdbdbd"
MEASURED_FILL: Final = "#dcedc8"


def _date(d: object) -> str:
    return escape(str(d)[:16].replace("T", " "))


def _coverage_table(data: ReportData, lang: Lang) -> str:
    if not data.coverage:
        return f'<p class="empty">{t("no_data", lang)}</p>'
    head = "".join(f"<th>{t('class_' + c, lang)}</th>" for c in CLASS_NAMES)
    rows = []
    for s in data.coverage:
        shares = "".join(f"<td>{percent(s.area_share_by_class.get(c, 0.0), lang)}</td>" for c in CLASS_NAMES)
        rows.append(
            f"<tr><td>{escape(s.operator)}</td><td class='l'>{escape(s.tech)}</td>"
            f"<td>{hectares(s.measured_area_m2, lang)}</td><td>{percent(s.park_area_measured_share, lang)}</td>"
            f"{shares}<td>{s.dead_zones}</td><td>{hectares(s.dead_zone_area_m2, lang)}</td></tr>"
        )
    return (
        f"<table class='coverage'><thead><tr><th>{t('operator', lang)}</th><th class='l'>{t('tech', lang)}</th>"
        f"<th>{t('measured_area', lang)}</th><th>{t('park_measured', lang)}</th>{head}"
        f"<th>{t('dead_zones', lang)}</th><th>{t('dead_area', lang)}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _change_section(data: ReportData, lang: Lang) -> str:
    counts = Counter(z.change.status for z in data.zones)
    status_row = "".join(f"<th>{t('st_' + s, lang)}</th>" for s in STATUSES)
    count_row = "".join(f"<td>{counts.get(s, 0)}</td>" for s in STATUSES)
    rows = []
    for s in data.coverage:
        ch = s.change
        if ch is None:
            cells = f"<td colspan='4' class='c'>{t('none', lang)}</td>"
        else:
            good = ch.area_share_by_class.get("good", 0.0) + ch.area_share_by_class.get("excellent", 0.0)
            cells = (
                f"<td>{signed(ch.measured_area_m2 / 1e4, lang, 2, ' ha')}</td>"
                f"<td>{signed(ch.dead_zones, lang)}</td>"
                f"<td>{signed(ch.dead_zone_area_m2 / 1e4, lang, 2, ' ha')}</td>"
                f"<td>{signed(good * 100.0, lang, 1, ' pp')}</td>"
            )
        rows.append(f"<tr><td>{escape(s.operator)}</td><td class='l'>{escape(s.tech)}</td>{cells}</tr>")
    change_table = (
        f"<table class='change'><thead><tr><th>{t('operator', lang)}</th><th class='l'>{t('tech', lang)}</th>"
        f"<th>{t('measured_area', lang)}</th><th>{t('dead_zones', lang)}</th><th>{t('dead_area', lang)}</th>"
        f"<th>{t('class_good', lang)} + {t('class_excellent', lang)}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    return (
        f"<section id='change'><h2>{t('s_change', lang)}</h2>"
        f"<p class='note'>{t('zones_by_status', lang)}</p>"
        f"<table class='status-counts'><thead><tr>{status_row}</tr></thead><tbody><tr>{count_row}</tr></tbody></table>"
        f"{change_table}</section>"
    )


def _zone_card(z: ZoneRow, lang: Lang) -> str:
    c = z.change
    before_only = c.cells_before - c.cells_after - c.cleared
    svg = cell_map(
        [
            Layer(
                cells=sorted(before_only), fill=BEFORE_FILL, stroke="#b3261e", label=t("legend_before", lang)
            ),
            Layer(
                cells=sorted(c.cleared), fill=CLEARED_FILL, stroke="#1b5e20", label=t("legend_cleared", lang)
            ),
            Layer(cells=sorted(c.cells_after), fill=NOW_FILL, stroke="#7f0000", label=t("legend_now", lang)),
        ],
        title=f"{c.operator} {c.tech} {c.id}",
    )
    site = t("none", lang)
    if z.nearest_site is not None:
        site = (
            f"{escape(z.nearest_site)}<br>{number(z.nearest_site_distance_m, lang)} m, "
            f"{number(z.nearest_site_bearing_deg, lang)}°"
        )
    return (
        f"<div class='zone' data-status='{c.status}'><h3>{escape(c.operator)} · {escape(c.tech)} "
        f"<span class='badge st-{c.status}'>{t('st_' + c.status, lang)}</span></h3>{svg}"
        f"<table><tr><td>{t('confidence', lang)}</td><td>{percent(c.confidence, lang)}</td></tr>"
        f"<tr><td>{t('area_before', lang)}</td><td>{hectares(c.area_m2(c.cells_before), lang)}</td></tr>"
        f"<tr><td>{t('area_now', lang)}</td><td>{hectares(c.area_m2(c.cells_after), lang)}</td></tr>"
        f"<tr><td>{t('nearest_site', lang)}</td><td>{site}</td></tr></table></div>"
    )


def _zones_section(data: ReportData, lang: Lang) -> str:
    legend = (
        f"<p class='legend'><span><i style='background:{NOW_FILL}'></i>{t('legend_now', lang)}</span>"
        f"<span><i style='background:{BEFORE_FILL}'></i>{t('legend_before', lang)}</span>"
        f"<span><i style='background:{CLEARED_FILL}'></i>{t('legend_cleared', lang)}</span></p>"
    )
    if not data.zones:
        body = f"<p class='empty'>{t('no_zones', lang)}</p>"
    else:
        shown = sorted(
            data.zones, key=lambda z: -z.change.area_m2(z.change.cells_before | z.change.cells_after)
        )
        body = (
            legend
            + "<div class='zones'>"
            + "".join(_zone_card(z, lang) for z in shown[:MAX_ZONES])
            + "</div>"
        )
        if len(shown) > MAX_ZONES:
            body += f"<p class='note'>+{len(shown) - MAX_ZONES} … GET /api/v1/coverage/zone-changes</p>"
    return (
        f"<section id='zones' class='page'><h2>{t('s_zones', lang)}</h2>"
        f"<p class='note'>{t('s_zones_note', lang)}</p>{body}</section>"
    )


def _gaps_section(data: ReportData, lang: Lang) -> str:
    if not data.boundary:
        return f"<section id='gaps' class='page'><h2>{t('s_gaps', lang)}</h2><p>{t('no_boundary', lang)}</p></section>"
    share = data.gap_area_m2 / data.park_area_m2 if data.park_area_m2 else None
    svg = cell_map(
        [
            Layer(
                cells=data.measured_cells,
                fill=MEASURED_FILL,
                stroke="#7fa77f",
                label=t("measured_area", lang),
            ),
            Layer(cells=data.gap_cells, fill=GAP_FILL, stroke="#757575", label=t("s_gaps", lang)),
        ],
        outline=data.boundary,
        width=420,
        height=260,
        pad=0.05,
        title=t("s_gaps", lang),
    )
    return (
        f"<section id='gaps' class='page'><h2>{t('s_gaps', lang)}</h2><p class='note'>{t('s_gaps_note', lang)}</p>"
        f"<table class='gaps'><tr><td>{t('gap_area', lang)}</td><td>{hectares(data.gap_area_m2, lang)}</td></tr>"
        f"<tr><td>{t('gap_share', lang)}</td><td>{percent(share, lang)}</td></tr></table>"
        f"<p class='legend'><span><i style='background:{MEASURED_FILL}'></i>{t('measured_area', lang)}</span>"
        f"<span><i style='background:{GAP_FILL}'></i>{t('s_gaps', lang)}</span></p>{svg}</section>"
    )


def _broadband_section(data: ReportData, lang: Lang) -> str:
    tg = data.broadband_targets
    targets = (
        f"<p class='note'>{t('targets', lang)}: {t('down', lang)} ≥ {number(tg.down_mbps, lang)} Mbit/s, "
        f"{t('up', lang)} ≥ {number(tg.up_mbps, lang)} Mbit/s, {t('latency', lang)} ≤ "
        f"{number(tg.latency_p95_ms, lang)} ms, {t('loss', lang)} ≤ {number(tg.loss_pct, lang, 1)} %</p>"
    )
    if not data.broadband:
        return f"<section id='broadband'><h2>{t('s_broadband', lang)}</h2>{targets}<p>{t('no_broadband', lang)}</p></section>"
    rows = []
    for b in data.broadband:
        rows.append(
            f"<tr><td>{escape(str(b.gw))}</td><td>{number(b.down_median_mbps, lang, 1)}</td>"
            f"<td>{number(b.up_median_mbps, lang, 1)}</td><td>{number(b.latency_p95_ms, lang, 1)}</td>"
            f"<td>{number(b.loss_mean_pct, lang, 2)}</td><td>{percent(b.ipv6_share, lang, 0)}</td>"
            f"<td class='l'>{t('bb_' + b.class_, lang)}</td></tr>"
        )
    meets = sum(b.class_ == "meets" for b in data.broadband)
    return (
        f"<section id='broadband'><h2>{t('s_broadband', lang)}</h2>{targets}"
        f"<table class='broadband'><thead><tr><th>{t('gateway', lang)}</th><th>{t('down', lang)} (Mbit/s)</th>"
        f"<th>{t('up', lang)} (Mbit/s)</th><th>{t('latency', lang)} (ms)</th><th>{t('loss', lang)} (%)</th>"
        f"<th>{t('ipv6', lang)}</th><th class='l'>{t('status', lang)}</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>{t('bb_share', lang)}: {meets} / {len(data.broadband)} ({percent(meets / len(data.broadband), lang)})</p>"
        "</section>"
    )


def render_html(data: ReportData, lang: Lang) -> str:
    """The whole report as an HTML document in ``lang``."""
    title = f"{t('title', lang)} · {escape(data.park_name)}"
    return (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{title}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>"
        f"<header><h1>{t('title', lang)}</h1><dl class='meta'>"
        f"<dt>{t('park', lang)}</dt><dd>{escape(data.park_name)} ({escape(data.park)})</dd>"
        f"<dt>{t('period', lang)}</dt><dd>{_date(data.start.isoformat())} – {_date(data.end.isoformat())} UTC</dd>"
        f"<dt>{t('previous', lang)}</dt><dd>{_date(data.previous_start.isoformat())} – "
        f"{_date(data.previous_end.isoformat())} UTC</dd>"
        f"<dt>{t('generated', lang)}</dt><dd>{_date(data.generated.isoformat())} UTC</dd>"
        f"<dt>{t('resolution', lang)}</dt><dd>{data.resolution}</dd></dl></header>"
        f"<section id='coverage'><h2>{t('s_coverage', lang)}</h2><p class='note'>{t('s_coverage_note', lang)}</p>"
        f"{_coverage_table(data, lang)}</section>"
        f"{_change_section(data, lang)}{_zones_section(data, lang)}{_gaps_section(data, lang)}"
        f"{_broadband_section(data, lang)}</body></html>"
    )
