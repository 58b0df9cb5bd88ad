"""Exports of coverage cells and dead zones for GIS tools: GeoJSON, CSV and KML (pure text builders).

The CSV is what QGIS's *Delimited Text* layer opens without questions: a ``wkt`` geometry column
(WGS84), ``lon``/``lat`` of the feature's centre for a point layer, times in ISO 8601 (UTC) and
plain values (lists as ``;``-separated text, no JSON). The KML names every placemark for people
(a zone: park · operator · tech · rank · area) and draws it with one style per class: the cause
of a dead zone, interference zones, or a cell's signal class.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal
from xml.sax.saxutils import escape

ExportFormat = Literal["geojson", "csv", "kml"]
MEDIA_TYPES: Final[dict[str, str]] = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "kml": "application/vnd.google-earth.kml+xml",
}
TIME_PROPERTIES: Final = frozenset({"first_seen_ms", "last_seen_ms"})
"""Epoch-millisecond properties written as ISO-8601 times (column name without ``_ms``)."""
POSITION_PROPERTIES: Final = frozenset({"centroid", "center", "lon", "lat"})
"""Properties that the CSV's ``lon``/``lat`` columns replace."""
CSV_GEOMETRY_COLUMNS: Final = ("lon", "lat", "wkt")

KML_STYLES: Final[dict[str, tuple[str, str]]] = {
    # style id: (line colour, fill colour), KML's aabbggrr; fills match the built-in map.
    "zone-coverage": ("ff2730d7", "8c2730d7"),
    "zone-no_service": ("ff000000", "a0303030"),
    "zone-interference": ("ff0080ff", "8c00a5ff"),
    "class-excellent": ("ff555555", "b3509819"),
    "class-good": ("ff555555", "b360cf91"),
    "class-fair": ("ff555555", "b38be0fe"),
    "class-poor": ("ff555555", "b3598dfc"),
    "class-none": ("ff555555", "b32730d7"),
    "class-unknown": ("ff555555", "b3bdbdbd"),
}
"""KML styles: dead zones by cause, interference zones, and cells by signal class."""


def feature_collection(features: Sequence[dict[str, Any]], **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with optional foreign members (paging, window)."""
    return {"type": "FeatureCollection", **members, "features": list(features)}


def iso_ms(ms: int | None) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2026-11-01T08:30:00Z``); '' for none."""
    if ms is None:
        return ""
    t = datetime.fromtimestamp(ms / 1000, UTC)
    text = t.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _plain(v: Any) -> Any:
    """A property value as one plain CSV/KML cell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v != v:
        return ""
    if isinstance(v, list | tuple):
        return ";".join(str(_plain(x)) for x in v)
    if isinstance(v, dict):
        return ";".join(f"{k}={_plain(x)}" for k, x in v.items())
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _is_number(v):
        return "'" + v  # keep spreadsheet formulas from running
    return v


def _rings(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    """The polygons of a Polygon or MultiPolygon, each a list of rings."""
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def to_wkt(geometry: dict[str, Any]) -> str:
    """OGC WKT of a GeoJSON Polygon or MultiPolygon (lon lat order, as GeoJSON)."""

    def ring(r: list[list[float]]) -> str:
        return "(" + ", ".join(f"{p[0]:.7f} {p[1]:.7f}" for p in r) + ")"

    def polygon(rings: list[list[list[float]]]) -> str:
        return "(" + ", ".join(ring(r) for r in rings) + ")"

    polys = _rings(geometry)
    if geometry["type"] == "Polygon":
        return "POLYGON " + polygon(polys[0])
    if geometry["type"] == "MultiPolygon":
        return "MULTIPOLYGON (" + ", ".join(polygon(p) for p in polys) + ")"
    raise ValueError(f"cannot write a {geometry['type']} as WKT")


def position(feature: dict[str, Any]) -> tuple[float, float]:
    """``(lon, lat)``: the zone centroid or cell centre the API gives, else the outer ring's mean."""
    props = feature["properties"]
    if props.get("lon") is not None and props.get("lat") is not None:
        return (float(props["lon"]), float(props["lat"]))
    for key in ("centroid", "center"):
        if props.get(key):
            return (float(props[key][0]), float(props[key][1]))
    outer = _rings(feature["geometry"])[0][0]
    pts = outer[:-1] if len(outer) > 1 and outer[0] == outer[-1] else outer
    return (
        round(sum(p[0] for p in pts) / len(pts), 6),
        round(sum(p[1] for p in pts) / len(pts), 6),
    )


def _columns(props: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, column name) of the CSV, in property order."""
    out = []
    for k in props:
        if k in POSITION_PROPERTIES:
            continue
        out.append((k, k.removesuffix("_ms") if k in TIME_PROPERTIES else k))
    return out


def _value(key: str, v: Any) -> Any:
    return iso_ms(v) if key in TIME_PROPERTIES else _plain(v)


def to_csv(features: Sequence[dict[str, Any]]) -> str:
    """One row per feature: its properties as plain values, then ``lon``, ``lat`` and ``wkt``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = _columns(features[0]["properties"]) if features else []
    writer.writerow([name for _, name in columns] + list(CSV_GEOMETRY_COLUMNS))
    for f in features:
        lon, lat = position(f)
        writer.writerow(
            [_value(k, f["properties"].get(k)) for k, _ in columns] + [lon, lat, to_wkt(f["geometry"])]
        )
    return buf.getvalue()


def _kml_polygon(rings: list[list[list[float]]]) -> str:
    def coords(ring: list[list[float]]) -> str:
        return " ".join(f"{p[0]:.7f},{p[1]:.7f}" for p in ring)

    inner = "".join(
        f"<innerBoundaryIs><LinearRing><coordinates>{coords(r)}</coordinates></LinearRing></innerBoundaryIs>"
        for r in rings[1:]
    )
    return (
        f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{coords(rings[0])}</coordinates>"
        f"</LinearRing></outerBoundaryIs>{inner}</Polygon>"
    )


def kml_style(props: dict[str, Any]) -> str:
    """The style id of a feature: a zone's kind or cause, or a cell's signal class."""
    if props.get("kind") == "interference":
        return "zone-interference"
    if props.get("kind") == "dead":
        return f"zone-{props.get('cause') or 'coverage'}"
    style = f"class-{props.get('class') or 'unknown'}"
    return style if style in KML_STYLES else "class-unknown"


def kml_name(feature: dict[str, Any]) -> str:
    """A placemark's name: the zone's (park · operator · tech · rank · area), else the cell's."""
    props = feature["properties"]
    if props.get("name"):
        return str(props["name"])
    parts = [props.get(k) for k in ("park", "operator", "tech", "h3")]
    named = [str(p) for p in parts if p]
    return " · ".join(named) if named else str(feature.get("id", ""))


def to_kml(features: Sequence[dict[str, Any]], *, name: str, description: str = "") -> str:
    """A KML 2.2 document: one styled, named Placemark per feature, properties as ExtendedData."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
        f"<name>{escape(name)}</name>",
    ]
    if description:
        parts.append(f"<description>{escape(description)}</description>")
    parts += [
        f'<Style id="{sid}"><LineStyle><color>{line}</color><width>1.5</width></LineStyle>'
        f"<PolyStyle><color>{fill}</color></PolyStyle></Style>"
        for sid, (line, fill) in KML_STYLES.items()
    ]
    for f in features:
        polys = _rings(f["geometry"])
        geom = (
            _kml_polygon(polys[0])
            if len(polys) == 1
            else ("<MultiGeometry>" + "".join(_kml_polygon(p) for p in polys) + "</MultiGeometry>")
        )
        # The feature id holds ':', which an XML id attribute may not: it goes with the data.
        values = {"id": f.get("id", ""), **f["properties"]}
        data = "".join(
            f'<Data name="{escape(str(k))}"><value>{escape(str(_value(k, v)))}</value></Data>'
            for k, v in values.items()
        )
        parts.append(
            f"<Placemark><name>{escape(kml_name(f))}</name>"
            f"<styleUrl>#{kml_style(f['properties'])}</styleUrl>"
            f"<ExtendedData>{data}</ExtendedData>{geom}</Placemark>"
        )
    parts.append("</Document></kml>")
    return "\n".join(parts)
