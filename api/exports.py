"""Exports of coverage cells and dead zones for GIS tools: GeoJSON, CSV and KML (pure text builders)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Final, Literal
from xml.sax.saxutils import escape

ExportFormat = Literal["geojson", "csv", "kml"]
MEDIA_TYPES: Final[dict[str, str]] = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "kml": "application/vnd.google-earth.kml+xml",
}


def feature_collection(features: Sequence[dict[str, Any]], **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with optional foreign members (paging, window)."""
    return {"type": "FeatureCollection", **members, "features": list(features)}


def _cell(v: Any) -> Any:
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _is_number(v):
        return "'" + v  # keep spreadsheet formulas from running
    return v


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def to_csv(features: Sequence[dict[str, Any]]) -> str:
    """One row per feature: its properties, plus the geometry as WKT-free GeoJSON text."""
    buf = io.StringIO()
    if not features:
        return ""
    names = list(features[0]["properties"])
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*names, "geometry"])
    for f in features:
        writer.writerow([_cell(f["properties"].get(n)) for n in names] + [_cell(f["geometry"])])
    return buf.getvalue()


def _kml_rings(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


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


def to_kml(features: Sequence[dict[str, Any]], *, name: str) -> str:
    """A KML 2.2 document with one Placemark per feature and its properties as ExtendedData."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
        f"<name>{escape(name)}</name>",
    ]
    for f in features:
        polys = _kml_rings(f["geometry"])
        geom = (
            _kml_polygon(polys[0])
            if len(polys) == 1
            else ("<MultiGeometry>" + "".join(_kml_polygon(p) for p in polys) + "</MultiGeometry>")
        )
        data = "".join(
            f'<Data name="{escape(str(k))}"><value>{escape(str(_cell(v)))}</value></Data>'
            for k, v in f["properties"].items()
        )
        parts.append(
            f"<Placemark><name>{escape(str(f.get('id', '')))}</name>"
            f"<ExtendedData>{data}</ExtendedData>{geom}</Placemark>"
        )
    parts.append("</Document></kml>")
    return "\n".join(parts)
