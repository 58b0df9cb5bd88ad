"""Pure builders of Grafana's dashboard JSON model (classic model, ``schemaVersion`` 39).

Every builder returns plain dicts that validate against Grafana's dashboard and panel JSON
Schemas. Panels get their ``id`` and ``gridPos`` from a :class:`Layout`, which flows them left to
right over the 24-column grid, so dashboard modules only say what to show, in reading order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Json = dict[str, Any]

DATASOURCE_UID: Final = "parkwatch-influxdb"
"""Uid of the provisioned InfluxDB datasource (``dashboards/provisioning/datasources``)."""
DATASOURCE: Final[Json] = {"type": "influxdb", "uid": DATASOURCE_UID}
API_DATASOURCE_UID: Final = "parkwatch-api"
"""Uid of the provisioned Infinity datasource that reads parkwatch's HTTP API."""
API_DATASOURCE: Final[Json] = {"type": "yesoreyeram-infinity-datasource", "uid": API_DATASOURCE_UID}
MIXED_DATASOURCE_UID: Final = "-- Mixed --"
SCHEMA_VERSION: Final = 39
GRID_COLUMNS: Final = 24

ResultFormat = Literal["time_series", "table"]
SPAN_GAPS_MS: Final = 600_000

STATE_COLORS: Final[dict[str, str]] = {
    "running": "green",
    "idle": "yellow",
    "setup": "blue",
    "fault": "red",
    "off": "text",
    "online": "green",
    "offline": "red",
}


def target(query: str, *, ref_id: str = "A", fmt: ResultFormat = "time_series", alias: str = "") -> Json:
    """One raw InfluxQL query of the provisioned datasource."""
    t: Json = {
        "refId": ref_id,
        "datasource": dict(DATASOURCE),
        "rawQuery": True,
        "query": query,
        "resultFormat": fmt,
    }
    if alias:
        t["alias"] = alias
    return t


@dataclass(frozen=True, slots=True)
class ApiColumn:
    """One column an Infinity query takes from each row of the API's answer."""

    selector: str
    text: str
    type: Literal["string", "number", "timestamp_epoch"] = "string"


def api_target(
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    root: str,
    columns: Sequence[ApiColumn],
    ref_id: str = "A",
) -> Json:
    """A GET of the parkwatch API through the Infinity datasource, parsed as a table.

    ``path`` is relative to the datasource URL (the API's base URL); ``params`` go in the query
    string, Grafana variables expanded. The backend parser runs in Grafana's server, so the API
    key of the datasource never reaches the browser.
    """
    return {
        "refId": ref_id,
        "datasource": dict(API_DATASOURCE),
        "type": "json",
        "source": "url",
        "parser": "backend",
        "format": "table",
        "url": path,
        "url_options": {"method": "GET", "params": [{"key": k, "value": v} for k, v in params]},
        "root_selector": root,
        "columns": [{"selector": c.selector, "text": c.text, "type": c.type} for c in columns],
    }


def thresholds(*steps: tuple[float | None, str]) -> Json:
    """Absolute thresholds; the first step's value must be ``None`` (minus infinity)."""
    if not steps or steps[0][0] is not None:
        raise ValueError("the first threshold step is the base: value None")
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def value_colors(colors: dict[str, str]) -> list[Json]:
    """A value mapping that colours text values (machine and gateway states)."""
    return [
        {
            "type": "value",
            "options": {name: {"color": color, "index": i} for i, (name, color) in enumerate(colors.items())},
        }
    ]


def field_config(
    *,
    unit: str = "",
    decimals: int | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    steps: Json | None = None,
    color_mode: str = "palette-classic",
    mappings: list[Json] | None = None,
    custom: Json | None = None,
) -> Json:
    defaults: Json = {"color": {"mode": color_mode}}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if steps is not None:
        defaults["thresholds"] = steps
    if mappings:
        defaults["mappings"] = mappings
    if custom is not None:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": []}


def _panel(kind: str, title: str, targets: Sequence[Json], description: str, fc: Json, options: Json) -> Json:
    # A panel whose queries use several datasources names Grafana's "-- Mixed --" datasource.
    sources = {t["datasource"]["uid"] for t in targets}
    if len(sources) > 1:
        datasource: Json = {"type": "datasource", "uid": MIXED_DATASOURCE_UID}
    elif sources == {API_DATASOURCE_UID}:
        datasource = dict(API_DATASOURCE)
    else:
        datasource = dict(DATASOURCE)
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "targets": list(targets),
        "fieldConfig": fc,
        "options": options,
    }


_LEGEND: Final[Json] = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
_TOOLTIP: Final[Json] = {"mode": "multi", "sort": "desc"}


def timeseries(
    title: str,
    targets: Sequence[Json],
    *,
    description: str,
    unit: str = "",
    steps: Json | None = None,
    threshold_style: Literal["off", "line", "dashed", "area", "line+area"] = "off",
    bars: bool = False,
    min_value: float | None = None,
) -> Json:
    """A time series graph; with ``steps`` and a ``threshold_style`` the thresholds are drawn."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 10,
        "showPoints": "never",
        # $__interval is often finer than a device's reporting period: join points up to
        # SPAN_GAPS_MS apart, so only real outages show as gaps.
        "spanNulls": SPAN_GAPS_MS,
        "thresholdsStyle": {"mode": threshold_style},
    }
    fc = field_config(unit=unit, steps=steps, custom=custom, min_value=min_value)
    options = {"legend": dict(_LEGEND), "tooltip": dict(_TOOLTIP)}
    return _panel("timeseries", title, targets, description, fc, options)


def _reduce(calc: str) -> Json:
    return {"values": False, "calcs": [calc], "fields": ""}


def stat(
    title: str,
    targets: Sequence[Json],
    *,
    description: str,
    unit: str = "",
    steps: Json | None = None,
    decimals: int | None = None,
    calc: str = "lastNotNull",
    mappings: list[Json] | None = None,
) -> Json:
    """Big numbers, one per series, coloured by thresholds."""
    fc = field_config(
        unit=unit,
        steps=steps or thresholds((None, "blue")),
        color_mode="thresholds",
        decimals=decimals,
        mappings=mappings,
    )
    options = {
        "graphMode": "none",
        "colorMode": "value",
        "justifyMode": "auto",
        "textMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
        "reduceOptions": _reduce(calc),
        "orientation": "auto",
    }
    return _panel("stat", title, targets, description, fc, options)


def bargauge(
    title: str,
    targets: Sequence[Json],
    *,
    description: str,
    unit: str = "",
    steps: Json | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Json:
    """Horizontal bars, one per series (e.g. coverage % per operator and technology)."""
    fc = field_config(
        unit=unit, steps=steps, color_mode="thresholds", min_value=min_value, max_value=max_value
    )
    options = {
        "displayMode": "gradient",
        "valueMode": "color",
        "namePlacement": "auto",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizWidth": 8,
        "minVizHeight": 16,
        "maxVizHeight": 300,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False, "calcs": []},
        "reduceOptions": _reduce("lastNotNull"),
        "orientation": "horizontal",
    }
    return _panel("bargauge", title, targets, description, fc, options)


def piechart(title: str, targets: Sequence[Json], *, description: str, overrides: list[Json]) -> Json:
    """A donut of a few counts; ``overrides`` fix each slice's colour."""
    fc = field_config()
    fc["overrides"] = overrides
    options = {
        "pieType": "donut",
        "tooltip": {"mode": "single", "sort": "none"},
        "reduceOptions": _reduce("lastNotNull"),
        "legend": {
            "values": ["percent"],
            "displayMode": "table",
            "placement": "right",
            "showLegend": True,
            "calcs": [],
        },
        "orientation": "auto",
    }
    return _panel("piechart", title, targets, description, fc, options)


def color_override(name: str, color: str) -> Json:
    """A field override giving the field ``name`` a fixed colour."""
    return {
        # "byNames" takes an options object, which the dashboard schema requires ("byName" takes a string).
        "matcher": {"id": "byNames", "options": {"mode": "include", "names": [name], "readOnly": True}},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
    }


def state_timeline(title: str, targets: Sequence[Json], *, description: str, colors: dict[str, str]) -> Json:
    """Coloured bands of text states over time, one row per series."""
    fc = field_config(
        color_mode="thresholds",
        steps=thresholds((None, "text")),
        mappings=value_colors(colors),
        custom={"fillOpacity": 80, "lineWidth": 0, "spanNulls": False},
    )
    options = {
        "showValue": "never",
        "rowHeight": 0.9,
        "mergeValues": True,
        "alignValue": "left",
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return _panel("state-timeline", title, targets, description, fc, options)


def table(
    title: str,
    targets: Sequence[Json],
    *,
    description: str,
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    sort_by: str = "",
    sort_desc: bool = True,
    merge: bool = False,
) -> Json:
    """A table of ``table``-format queries; ``merge`` joins several queries' rows on their tags."""
    fc = field_config(
        steps=steps or thresholds((None, "text")),
        color_mode="thresholds",
        mappings=mappings,
        # The schema's cellOptions union cannot tell its members apart; the older displayMode
        # field says the same and Grafana migrates it to cellOptions on load.
        custom={"align": "auto", "inspect": False, "displayMode": "color-text"},
    )
    options: Json = {"frameIndex": 0, "showHeader": True, "cellHeight": "sm"}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": sort_desc}]
    panel = _panel("table", title, targets, description, fc, options)
    if merge:
        panel["transformations"] = [{"id": "merge", "options": {}}]
    return panel


@dataclass(frozen=True, slots=True)
class MapLayer:
    """A Geomap markers layer drawn from the frame of query ``ref_id`` (fields ``lat``/``lon``)."""

    name: str
    ref_id: str
    color_field: str = ""
    fixed_color: str = "red"
    size: int = 6
    symbol: str = "img/icons/marker/circle.svg"


def geomap(
    title: str,
    targets: Sequence[Json],
    *,
    description: str,
    layers: Sequence[MapLayer],
    center: tuple[int, int],
    zoom: int,
    unit: str = "",
    steps: Json | None = None,
) -> Json:
    """A Geomap of markers at ``lat``/``lon`` fields, coloured by a field's thresholds.

    The schema types the view's ``lat``/``lon`` as integers, hence the whole-degree ``center``.
    """
    fc = field_config(unit=unit, steps=steps, color_mode="thresholds")
    map_layers = []
    for layer in layers:
        color: Json = {"fixed": layer.fixed_color}
        if layer.color_field:
            color["field"] = layer.color_field
        map_layers.append(
            {
                "type": "markers",
                "name": layer.name,
                "config": {
                    "showLegend": True,
                    "style": {
                        "color": color,
                        "opacity": 0.8,
                        "size": {"fixed": layer.size, "min": 2, "max": 15},
                        "symbol": {"mode": "fixed", "fixed": layer.symbol},
                    },
                },
                "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                "filterData": {"id": "byRefId", "options": layer.ref_id},
                "tooltip": True,
            }
        )
    options = {
        "view": {"id": "coords", "lat": center[0], "lon": center[1], "zoom": zoom, "allLayers": True},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
        "basemap": {"type": "default", "name": "Basemap"},
        "layers": map_layers,
        "tooltip": {"mode": "details"},
    }
    return _panel("geomap", title, targets, description, fc, options)


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    description: str,
    multi: bool = True,
    include_all: bool = True,
) -> Json:
    """A template variable filled by an InfluxQL ``SHOW TAG VALUES`` query, "All" selected if offered.

    Without a custom ``allValue`` Grafana expands "All" to every value, regex-escaped and joined
    as ``(a|b|c)``, which the dashboards match with ``=~ /^$var$/``.
    """
    var: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": dict(DATASOURCE),
        "query": query,
        "refresh": 1,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "options": [],
    }
    # With "All", it is selected; without, Grafana selects the first value.
    if include_all:
        var["current"] = {"text": ["All"], "value": ["$__all"]}
    return var


def textbox_variable(name: str, label: str, default: str, *, description: str) -> Json:
    """A free-text variable with a default (e.g. an ideal production rate)."""
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": default,
        "current": {"text": default, "value": default},
        "options": [{"text": default, "value": default, "selected": True}],
    }


@dataclass
class Layout:
    """Places panels in reading order on the 24-column grid and numbers them."""

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_h: int = 0
    _next_id: int = 1

    def row(self, title: str) -> None:
        """Start a new (expanded) row with a title."""
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._take_id(),
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": self._y},
            }
        )
        self._y += 1

    def add(self, panel: Json, *, w: int, h: int) -> None:
        """Place ``panel`` ``w`` columns wide and ``h`` rows high, wrapping when the line is full."""
        if not 0 < w <= GRID_COLUMNS:
            raise ValueError(f"panel width {w} outside 1..{GRID_COLUMNS}")
        if self._x + w > GRID_COLUMNS:
            self._newline()
        panel = {**panel, "id": self._take_id(), "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y}}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
        self._x = 0
        self._row_h = 0

    def _take_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    variables: Sequence[Json],
    layout: Layout,
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> Json:
    """The dashboard document (what Grafana's file provisioning loads)."""
    if not 8 <= len(uid) <= 40:
        raise ValueError(f"dashboard uid {uid!r} must be 8-40 characters")
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": list(tags),
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "type": "dashboards",
                "title": "parkwatch",
                "tags": ["parkwatch"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": list(variables)},
        "panels": layout.panels,
    }
