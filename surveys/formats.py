"""Rows of a survey file: CSV (comma, semicolon or tab), JSON Lines, GeoJSON points.

Every reader yields ``(row_number, fields)`` where ``fields`` maps a column name to its value
(strings from CSV, JSON values otherwise). GeoJSON point coordinates become the ``lon`` and
``lat`` (and ``alt``) columns beside the feature's properties.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Final, Literal

Format = Literal["csv", "jsonl", "geojson"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "jsonl", "geojson")

Row = dict[str, Any]


class SurveyFormatError(ValueError):
    """The file is not of the format it claims (or that its name suggests)."""


def guess_format(name: str) -> Format:
    """The format suggested by a file name (``.csv``/``.txt``/``.tsv``, ``.jsonl``, ``.geojson``)."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith((".geojson", ".json")):
        return "geojson"
    return "csv"


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, Row]]:
    if not delimiter:
        head = text[:4096]
        counts = {d: head.count(d) for d in (",", ";", "\t")}
        delimiter = max(counts, key=lambda d: counts[d])
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames:
        raise SurveyFormatError("the CSV file has no header row: name the columns in its first line")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    for row in reader:
        # Row 1 is the header: the first data row is row 2, as a spreadsheet shows it.
        yield reader.line_num, {k: v.strip() for k, v in row.items() if k is not None and isinstance(v, str)}


def _jsonl_rows(text: str) -> Iterator[tuple[int, Row]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield n, {"__error__": f"line {n} is not JSON: {exc}"[:200]}
            continue
        yield n, obj if isinstance(obj, dict) else {"__error__": f"line {n} is not a JSON object"}


def _geojson_rows(text: str) -> Iterator[tuple[int, Row]]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SurveyFormatError(f"not a GeoJSON document: {exc}") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise SurveyFormatError("a GeoJSON FeatureCollection with a 'features' array is expected")
    for n, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        props = feature.get("properties") if isinstance(feature, dict) else None
        row: Row = dict(props) if isinstance(props, dict) else {}
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list):
            yield n, {"__error__": f"feature {n} is not a Point"}
            continue
        if len(coords) >= 2:
            row["lon"], row["lat"] = coords[0], coords[1]
        if len(coords) >= 3:
            row["alt"] = coords[2]
        yield n, row


def read_rows(data: bytes, fmt: Format, *, delimiter: str = "") -> Iterator[tuple[int, Row]]:
    """The rows of a survey file; a row that cannot be read carries an ``__error__`` column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SurveyFormatError(f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    if fmt == "csv":
        return _csv_rows(text, delimiter)
    if fmt == "jsonl":
        return _jsonl_rows(text)
    return _geojson_rows(text)
