"""The *Coverage* dashboard: mobile signal on a map of H3 cells, dead zones, coverage %, broadband.

Signal classes and their colours come from the signal profile of :mod:`analytics.signal`, the
same thresholds the API and the simulator use. The map draws one marker per H3 cell at the mean
position of its samples (Grafana's Geomap has no hexagon layer; the built-in web dashboard draws
the hexagons). A cell is a dead zone when its mean RSRP is below the profile's service floor or its
mean SINR is below the SINR floor, with at least :data:`MIN_DEAD_ZONE_SAMPLES` samples.
"""

from __future__ import annotations

from typing import Final

from analytics.signal import CLASS_NAMES, DEFAULT_PROFILE
from dashboards import panels as p
from dashboards.influxql import (
    CLASS_COLORS,
    class_condition,
    cond,
    covered_indicator,
    group_by,
    group_by_time,
    q,
    rsrp_thresholds_steps,
    tech_groups,
    var_match,
    where,
)
from dashboards.panels import Json

UID: Final = "parkwatch-coverage"
MIN_DEAD_ZONE_SAMPLES: Final = 3
MAP_CENTER: Final = (21, 107)
"""Hai Phong, whole degrees (the Geomap view schema takes integers); zoom 9 shows its parks."""

PARK = var_match("park", "park")
OPERATOR = var_match("operator", "operator")
TECH = var_match("tech", "tech")
CELL_FILTER = (PARK, OPERATOR, TECH)


def cells_query() -> str:
    """One row per H3 cell: mean RSRP/SINR, sample count and the samples' mean position."""
    return (
        f"SELECT mean({q('rsrp_dbm')}) AS {q('rsrp_dbm')}, mean({q('sinr_db')}) AS {q('sinr_db')}, "
        f"count({q('rsrp_dbm')}) AS {q('samples')}, mean({q('lat')}) AS {q('lat')}, "
        f"mean({q('lon')}) AS {q('lon')} FROM {q('cellular')} {where(*CELL_FILTER)} {group_by('h3')}"
    )


def dead_zones_query() -> str:
    """The cells of :func:`cells_query` without usable service (LTE/NR floor; see module doc)."""
    floor_dbm = DEFAULT_PROFILE.thresholds("LTE").rsrp_lower_dbm[0]
    sinr_floor_db = DEFAULT_PROFILE.thresholds("LTE").sinr_floor_db
    return (
        f"SELECT {q('rsrp_dbm')}, {q('sinr_db')}, {q('samples')}, {q('lat')}, {q('lon')} "
        f"FROM ({cells_query()}) "
        f"WHERE ({cond('rsrp_dbm', '<', floor_dbm)} OR {cond('sinr_db', '<', sinr_floor_db)}) "
        f"AND {cond('samples', '>=', MIN_DEAD_ZONE_SAMPLES)} {group_by('h3')}"
    )


def coverage_queries() -> list[str]:
    """Covered share of samples (RSRP at or above the service floor) per operator and technology.

    One query per group of technologies sharing a floor (LTE/NR -110 dBm, GSM/UMTS -105 dBm).
    """
    out = []
    for g in tech_groups():
        inner = (
            f"SELECT {covered_indicator('rsrp_dbm', g.service_floor_dbm)} AS {q('covered')} "
            f"FROM {q('cellular')} {where(*CELL_FILTER, g.tech_match)}"
        )
        out.append(
            f"SELECT 100 * mean({q('covered')}) AS {q('coverage_pct')} FROM ({inner}) "
            f"{group_by('operator', 'tech')}"
        )
    return out


def _bb(field: str, agg: str = "mean") -> str:
    return (
        f"SELECT {agg}({q(field)}) AS {q(field)} FROM {q('broadband')} {where(PARK)} "
        f"{group_by_time('target')}"
    )


def _reachable_query(field: str) -> str:
    ok = f"SELECT {q(field)} AS {q('ok')} FROM {q('broadband')} {where(PARK, cond(field, '=', True))}"
    probed = f"SELECT {q(field)} AS {q('probed')} FROM {q('broadband')} {where(PARK)}"
    return f"SELECT 100 * count({q('ok')}) / count({q('probed')}) AS {q(field)} FROM ({ok}), ({probed}) {group_by('target')}"


def build() -> Json:
    """The dashboard JSON."""
    rsrp_steps = p.thresholds(*rsrp_thresholds_steps())
    lay = p.Layout()
    lay.row("Mobile coverage")
    lay.add(
        p.geomap(
            "Coverage cells and dead zones",
            [
                p.target(cells_query(), fmt="table"),
                p.target(dead_zones_query(), ref_id="B", fmt="table"),
            ],
            description=(
                "One marker per H3 cell (resolution set by the ingester), at the mean position of its "
                "samples, coloured by mean RSRP class (profile "
                f"{DEFAULT_PROFILE.name}: excellent ≥ −80, good ≥ −90, fair ≥ −100, poor ≥ −110 dBm, "
                "else none). Red crosses: dead zones, cells with mean RSRP below −110 dBm or mean "
                f"SINR below 0 dB and at least {MIN_DEAD_ZONE_SAMPLES} samples. Pick one operator and "
                "technology to map a single network."
            ),
            layers=[
                p.MapLayer(name="Cells by RSRP class", ref_id="A", color_field="rsrp_dbm", size=7),
                p.MapLayer(
                    name="Dead zones",
                    ref_id="B",
                    fixed_color=CLASS_COLORS["none"],
                    size=12,
                    symbol="img/icons/marker/x-mark.svg",
                ),
            ],
            center=MAP_CENTER,
            zoom=9,
            unit="dBm",
            steps=rsrp_steps,
        ),
        w=16,
        h=14,
    )
    lay.add(
        p.bargauge(
            "Coverage per operator and technology",
            [
                p.target(query, ref_id=chr(ord("A") + i), alias="$tag_operator $tag_tech")
                for i, query in enumerate(coverage_queries())
            ],
            description=(
                "Share of samples with usable RSRP: at or above −110 dBm (LTE, NR) or −105 dBm "
                "(GSM, UMTS), the floor of the signal profile."
            ),
            unit="percent",
            steps=p.thresholds((None, "red"), (90, "orange"), (98, "green")),
            min_value=0,
            max_value=100,
        ),
        w=8,
        h=7,
    )
    lay.add(
        p.piechart(
            "Samples by signal class",
            [
                p.target(
                    f"SELECT count({q('rsrp_dbm')}) AS {q(name)} FROM {q('cellular')} "
                    f"{where(*CELL_FILTER, class_condition(name))}",
                    ref_id=chr(ord("A") + i),
                    # The alias names the slice; the colour override matches it.
                    alias=name,
                )
                for i, name in enumerate(reversed(CLASS_NAMES))
            ],
            description="Cellular samples per RSRP class of the signal profile (technology-specific bounds).",
            overrides=[p.color_override(name, CLASS_COLORS[name]) for name in CLASS_NAMES],
        ),
        w=8,
        h=7,
    )
    lay.add(
        p.stat(
            "Surveyed cells",
            [p.target(f"SELECT count({q('samples')}) AS {q('cells')} FROM ({cells_query()})")],
            description="H3 cells with at least one cellular sample in the time range.",
            unit="short",
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Dead-zone cells",
            [p.target(f"SELECT count({q('samples')}) AS {q('dead_cells')} FROM ({dead_zones_query()})")],
            description="Cells shown as dead zones on the map.",
            unit="short",
            steps=p.thresholds((None, "green"), (1, "red")),
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Samples",
            [
                p.target(
                    f"SELECT count({q('rsrp_dbm')}) AS {q('samples')} FROM {q('cellular')} {where(*CELL_FILTER)}"
                )
            ],
            description="Cellular samples with an RSRP in the time range.",
            unit="short",
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.timeseries(
            "Mean RSRP per operator and technology",
            [
                p.target(
                    f"SELECT mean({q('rsrp_dbm')}) AS {q('rsrp_dbm')} FROM {q('cellular')} "
                    f"{where(*CELL_FILTER)} {group_by_time('operator', 'tech')}",
                    alias="$tag_operator $tag_tech",
                )
            ],
            description="Mean RSRP over all cells; the background bands are the signal classes.",
            unit="dBm",
            steps=rsrp_steps,
            threshold_style="area",
        ),
        w=12,
        h=8,
    )
    lay.add(
        p.table(
            "Dead-zone cell list",
            [p.target(dead_zones_query(), fmt="table")],
            description="The dead-zone cells of the map, worst first (H3 index, mean RSRP and SINR, samples, position).",
            steps=rsrp_steps,
            sort_by="rsrp_dbm",
            sort_desc=False,
        ),
        w=12,
        h=8,
    )

    lay.row("Broadband quality")
    lay.add(
        p.timeseries(
            "Latency",
            [
                p.target(_bb("latency_ms"), alias="$tag_target"),
                p.target(_bb("jitter_ms"), ref_id="B", alias="$tag_target jitter"),
            ],
            description="Mean round-trip latency and jitter per probe target.",
            unit="ms",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Packet loss",
            [p.target(_bb("loss_pct"), alias="$tag_target")],
            description="Mean packet loss per probe target.",
            unit="percent",
            steps=p.thresholds((None, "green"), (1, "orange"), (5, "red")),
            threshold_style="dashed",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Throughput",
            [
                p.target(_bb("down_mbps"), alias="$tag_target down"),
                p.target(_bb("up_mbps"), ref_id="B", alias="$tag_target up"),
            ],
            description="Mean measured download and upload rate per probe target.",
            unit="Mbits",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.bargauge(
            "IPv4 / IPv6 reachability",
            [
                p.target(_reachable_query("ipv4_ok"), alias="$tag_target IPv4"),
                p.target(_reachable_query("ipv6_ok"), ref_id="B", alias="$tag_target IPv6"),
            ],
            description="Share of probes that reached each target over IPv4 and over IPv6.",
            unit="percent",
            steps=p.thresholds((None, "red"), (95, "orange"), (99.5, "green")),
            min_value=0,
            max_value=100,
        ),
        w=12,
        h=7,
    )
    lay.add(
        p.timeseries(
            "DNS resolution time",
            [p.target(_bb("dns_ms"), alias="$tag_target")],
            description="Mean DNS lookup time per probe target.",
            unit="ms",
            min_value=0,
        ),
        w=12,
        h=7,
    )
    return p.dashboard(
        uid=UID,
        title="parkwatch · Coverage",
        description="Mobile coverage by H3 cell with dead zones, coverage per operator and technology, broadband quality.",
        tags=["parkwatch", "coverage"],
        variables=[
            p.query_variable(
                "park",
                "Park",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('park')}",
                description="Industrial park(s).",
            ),
            p.query_variable(
                "operator",
                "Operator",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('operator')} WHERE {PARK}",
                description="Mobile operator(s).",
            ),
            p.query_variable(
                "tech",
                "Technology",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('tech')} WHERE {PARK} AND {OPERATOR}",
                description="Radio technology: GSM, UMTS, LTE, NR.",
            ),
        ],
        layout=lay,
        time_from="now-24h",
    )
