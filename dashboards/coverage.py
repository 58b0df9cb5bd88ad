"""The *Coverage* dashboard: mobile signal on a map of H3 cells, dead zones, coverage %, broadband.

Signal classes and their colours come from the signal profile of :mod:`analytics.signal`, the
same thresholds the API and the simulator use. The map draws one marker per H3 cell at the mean
position of its samples (Grafana's Geomap has no hexagon layer; the built-in web dashboard draws
the hexagons).

Dead zones are not computed here: the confidence test of :mod:`analytics.deadzones` (a sign test
per cell against the technology's coverage threshold, device calibration, GNSS edge exclusion)
cannot be written in InfluxQL. The dead-zone layer, count and list read the API's
``/api/v1/coverage/dead-zones`` through the Infinity datasource instead, with the same parameters
as the built-in map and the exports, so every view shows the same dead cells.
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
DEAD_ZONES_PATH: Final = "/api/v1/coverage/dead-zones"
API_PAGE_SIZE: Final = 1000
API_PARAMS: Final[tuple[tuple[str, str], ...]] = (
    ("park", "${park}"),
    ("operator", "${operator}"),
    ("tech", "${tech}"),
    ("from", "${__from:date:iso}"),
    ("to", "${__to:date:iso}"),
    ("limit", str(API_PAGE_SIZE)),
)
"""The API's query parameters, filled from the dashboard's variables and time range."""
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


def dead_zones_target(columns: list[p.ApiColumn], ref_id: str = "A") -> Json:
    """The dead zones of the selected park, operator, technology and time range, from the API."""
    return p.api_target(DEAD_ZONES_PATH, API_PARAMS, root="features", columns=columns, ref_id=ref_id)


ZONE_COLUMNS: Final = [
    p.ApiColumn("properties.name", "zone"),
    p.ApiColumn("properties.cause", "cause"),
    p.ApiColumn("properties.confidence", "confidence", "number"),
    p.ApiColumn("properties.area_m2", "area_m2", "number"),
    p.ApiColumn("properties.cell_count", "cell_count", "number"),
    p.ApiColumn("properties.worst_rsrp_dbm", "worst_rsrp_dbm", "number"),
    p.ApiColumn("properties.median_rsrp_dbm", "median_rsrp_dbm", "number"),
    p.ApiColumn("properties.samples", "samples", "number"),
    p.ApiColumn("properties.devices", "devices", "number"),
    p.ApiColumn("properties.first_seen_ms", "first_seen", "timestamp_epoch"),
    p.ApiColumn("properties.last_seen_ms", "last_seen", "timestamp_epoch"),
    p.ApiColumn("properties.cells", "cells"),
    p.ApiColumn("properties.lat", "lat", "number"),
    p.ApiColumn("properties.lon", "lon", "number"),
]
"""What the zone list shows of each dead zone (``lat``/``lon``: the zone's centroid)."""


def coverage_queries() -> list[str]:
    """Covered share of samples (RSRP at or above the service floor) per operator and technology.

    Every operator and technology of the selected park, whatever the operator and technology
    selected for the map: the panel compares them.

    One query per group of technologies sharing a floor (LTE/NR -110 dBm, GSM/UMTS -105 dBm).
    """
    out = []
    for g in tech_groups():
        inner = (
            f"SELECT {covered_indicator('rsrp_dbm', g.service_floor_dbm)} AS {q('covered')} "
            f"FROM {q('cellular')} {where(PARK, g.tech_match)}"
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
                dead_zones_target(ZONE_COLUMNS, ref_id="B"),
            ],
            description=(
                "One marker per H3 cell (resolution set by the ingester), at the mean position of its "
                "samples, coloured by mean RSRP class (profile "
                f"{DEFAULT_PROFILE.name}: excellent ≥ −80, good ≥ −90, fair ≥ −100, poor ≥ −110 dBm, "
                "else none). Red crosses: the centroids of the dead zones the API reports "
                "(/api/v1/coverage/dead-zones: cells whose median RSRP is below the technology's "
                "coverage threshold at 90 % confidence, or without service), the same as the "
                "built-in map and the exports."
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
                "(GSM, UMTS), the floor of the signal profile. Every operator and technology of the park."
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
            [dead_zones_target([p.ApiColumn("properties.cell_count", "dead_cells", "number")])],
            description="H3 cells in the API's dead zones (the sum over the zones on the map).",
            unit="short",
            calc="sum",
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
            "Dead zones",
            [dead_zones_target(ZONE_COLUMNS)],
            description=(
                "The API's dead zones, largest first: name (park · operator · tech · rank · area), "
                "cause, confidence, area, cells, worst and median RSRP, samples, devices, first and "
                "last seen. The same list as /api/v1/export/dead-zones."
            ),
            steps=rsrp_steps,
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
        # One value each: the API answers for one park, operator and technology, and a map of
        # one network is what a planner reads.
        variables=[
            p.query_variable(
                "park",
                "Park",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('park')}",
                description="Industrial park.",
                multi=False,
                include_all=False,
            ),
            p.query_variable(
                "operator",
                "Operator",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('operator')} WHERE {PARK}",
                description="Mobile operator.",
                multi=False,
                include_all=False,
            ),
            p.query_variable(
                "tech",
                "Technology",
                f"SHOW TAG VALUES FROM {q('cellular')} WITH KEY = {q('tech')} WHERE {PARK} AND {OPERATOR}",
                description="Radio technology: GSM, UMTS, LTE, NR.",
                multi=False,
                include_all=False,
            ),
        ],
        layout=lay,
        time_from="now-24h",
    )
