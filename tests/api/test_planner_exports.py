"""What a planner gets from the coverage API: GIS files that open as they are, clear 404s,
case-insensitive operators, the list of what exists, and empty answers that say why."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import WINDOW, headers

pytestmark = pytest.mark.integration

KML = {"k": "http://www.opengis.net/kml/2.2"}
P1_ALPHA_LTE = {**WINDOW, "park": "p1", "operator": "Alpha", "tech": "LTE"}
_WKT_NUMBER = r"-?\d+(?:\.\d+)?"
_WKT_POINT = re.compile(rf"({_WKT_NUMBER}) ({_WKT_NUMBER})")


def parse_wkt(text: str) -> list[list[list[tuple[float, float]]]]:
    """Polygons (lists of rings of (lon, lat)) of a WKT POLYGON or MULTIPOLYGON; strict grammar."""
    ring = rf"\({_WKT_NUMBER} {_WKT_NUMBER}(?:, {_WKT_NUMBER} {_WKT_NUMBER})*\)"
    polygon = rf"\({ring}(?:, {ring})*\)"
    if re.fullmatch(rf"POLYGON {polygon}", text):
        bodies = [text.removeprefix("POLYGON ")]
    elif re.fullmatch(rf"MULTIPOLYGON \({polygon}(?:, {polygon})*\)", text):
        bodies = re.findall(polygon, text.removeprefix("MULTIPOLYGON "))
    else:
        raise ValueError(f"not a WKT (multi)polygon: {text[:80]!r}")
    out = []
    for body in bodies:
        rings = re.findall(ring, body)
        out.append([[(float(x), float(y)) for x, y in _WKT_POINT.findall(r)] for r in rings])
    return out


def _get(client: TestClient, path: str, params: dict[str, Any], key: str = "admin") -> Any:
    r = client.get(path, params=params, headers=headers(key))
    assert r.status_code == 200, r.text
    return r


def _rings_of(geometry: dict[str, Any]) -> list[list[list[tuple[float, float]]]]:
    polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [[[(round(p[0], 7), round(p[1], 7)) for p in ring] for ring in poly] for poly in polys]


@pytest.mark.parametrize("kind", ["dead-zones", "cells"])
def test_csv_opens_in_a_gis_as_wkt_and_point_layer(client: TestClient, kind: str) -> None:
    params = {**P1_ALPHA_LTE, "format": "csv"}
    text = _get(client, f"/api/v1/export/{kind}", params).text
    geo = json.loads(_get(client, f"/api/v1/export/{kind}", {**params, "format": "geojson"}).text)["features"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and len(rows) == len(geo)
    header = text.splitlines()[0].split(",")
    assert header[-3:] == ["lon", "lat", "wkt"] and "first_seen" in header and "last_seen" in header
    assert not {"centroid", "center", "first_seen_ms", "last_seen_ms"} & set(header)
    for row, feature in zip(rows, geo, strict=True):
        polys = parse_wkt(row["wkt"])
        assert polys == _rings_of(feature["geometry"])
        outer = polys[0][0]
        assert outer[0] == outer[-1]
        lon, lat = float(row["lon"]), float(row["lat"])
        assert min(p[0] for p in outer) - 0.01 < lon < max(p[0] for p in outer) + 0.01
        assert min(p[1] for p in outer) - 0.01 < lat < max(p[1] for p in outer) + 0.01
        for column in ("first_seen", "last_seen"):
            assert row[column].endswith("Z")
            t = datetime.fromisoformat(row[column].replace("Z", "+00:00"))
            ms = feature["properties"][f"{column}_ms"]
            assert abs(t.timestamp() * 1000 - ms) < 1
        # Plain values: no JSON lists or objects in any cell.
        for column, value in row.items():
            if column != "wkt":
                assert not value.startswith(("[", "{")), (column, value)
        if kind == "dead-zones":
            assert row["cells"].split(";") == feature["properties"]["cells"]
            assert row["operators"] == "Alpha"
            assert float(row["confidence"]) == feature["properties"]["confidence"]


def test_kml_placemarks_have_readable_names_and_a_style_per_class(client: TestClient) -> None:
    params = {**WINDOW, "park": "p1", "format": "kml"}
    zones = ET.fromstring(_get(client, "/api/v1/export/dead-zones", params).text)
    styles = {s.get("id") for s in zones.iterfind(".//k:Style", KML)}
    assert {"zone-coverage", "zone-no_service", "zone-interference"} <= styles
    placemarks = zones.findall(".//k:Placemark", KML)
    assert placemarks
    for rank, pm in enumerate(placemarks, start=1):
        name = pm.findtext("k:name", namespaces=KML) or ""
        assert re.fullmatch(rf"p1 · (Alpha|Beta) · (LTE|NR) · #{rank} · \d+\.\d\d ha", name), name
        style = (pm.findtext("k:styleUrl", namespaces=KML) or "").removeprefix("#")
        cause = pm.find("k:ExtendedData/k:Data[@name='cause']/k:value", KML)
        assert cause is not None and style == f"zone-{cause.text}" and style in styles
    cells = ET.fromstring(_get(client, "/api/v1/export/cells", {**P1_ALPHA_LTE, "format": "kml"}).text)
    seen = set()
    for pm in cells.findall(".//k:Placemark", KML):
        cls = pm.find("k:ExtendedData/k:Data[@name='class']/k:value", KML)
        style = (pm.findtext("k:styleUrl", namespaces=KML) or "").removeprefix("#")
        assert cls is not None and style == f"class-{cls.text}"
        assert (pm.findtext("k:name", namespaces=KML) or "").startswith("p1 · Alpha · LTE · ")
        seen.add(style)
    assert len(seen) >= 2


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/coverage/cells",
        "/api/v1/coverage/dead-zones",
        "/api/v1/coverage/interference-zones",
        "/api/v1/coverage/gaps",
        "/api/v1/coverage/summary",
        "/api/v1/coverage/operators",
        "/api/v1/operators",
        "/api/v1/export/cells?format=csv",
        "/api/v1/export/dead-zones?format=kml",
        "/api/v1/export/dead-zones",
    ],
)
def test_an_unknown_park_is_a_404_that_says_what_to_do(client: TestClient, path: str) -> None:
    r = client.get(path, params={"park": "nowhere"}, headers=headers("admin"))
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["code"] == "not_found"
    assert "unknown park 'nowhere'" in error["message"] and "/api/v1/coverage/operators" in error["message"]
    # A park with data but no configuration (p2) is known.
    assert client.get(path, params={"park": "p2"}, headers=headers("admin")).status_code == 200
    # A key that may not read the park learns nothing about whether it exists.
    assert client.get(path, params={"park": "nowhere"}, headers=headers("planner-p1")).status_code == 403


@pytest.mark.parametrize("spelling", ["alpha", "ALPHA", "aLPHa"])
def test_operator_filter_ignores_letter_case(client: TestClient, spelling: str) -> None:
    for path in ("/api/v1/coverage/dead-zones", "/api/v1/coverage/cells", "/api/v1/coverage/summary"):
        exact = _get(client, path, {**WINDOW, "operator": "Alpha"}).json()
        other = _get(client, path, {**WINDOW, "operator": spelling}).json()
        assert other == exact, path
    dead = _get(client, "/api/v1/coverage/dead-zones", {**WINDOW, "operator": spelling}).json()
    assert dead["features"] and {f["properties"]["operators"][0] for f in dead["features"]} == {"Alpha"}


def test_operators_lists_what_exists_per_park(client: TestClient) -> None:
    body = _get(client, "/api/v1/coverage/operators", {}).json()
    assert [i["park"] for i in body["items"]] == ["p1", "p2"]
    for item in body["items"]:
        assert item["operators"] == ["Alpha", "Beta"] and item["technologies"] == ["LTE", "NR"]
        assert {(n["operator"], n["tech"]) for n in item["networks"]} == {
            (o, t) for o in ("Alpha", "Beta") for t in ("LTE", "NR")
        }
        assert all(n["samples"] > 0 and n["latest"] <= item["latest"] for n in item["networks"])
        assert max(n["latest"] for n in item["networks"]) == item["latest"]
        datetime.fromisoformat(item["latest"].replace("Z", "+00:00"))
    # A key limited to p1 sees p1 only.
    mine = _get(client, "/api/v1/coverage/operators", {}, key="viewer-p1").json()
    assert [i["park"] for i in mine["items"]] == ["p1"]
    assert _get(client, "/api/v1/coverage/operators", {"park": "p2"}).json()["items"][0]["park"] == "p2"


def test_an_empty_answer_says_when_the_latest_data_are(client: TestClient) -> None:
    long_ago = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-08T00:00:00Z", "park": "p1"}
    latest = _get(client, "/api/v1/coverage/operators", {"park": "p1"}).json()["items"][0]["latest"]
    for path in (
        "/api/v1/coverage/dead-zones",
        "/api/v1/coverage/cells",
        "/api/v1/coverage/interference-zones",
        "/api/v1/coverage/summary",
        "/api/v1/export/dead-zones",
    ):
        body = _get(client, path, long_ago).json()
        assert not body.get("features", body.get("items")), path
        assert body["latest"] == latest, path
        assert f"the latest reading for this selection is from {latest}" in body["message"], path
    # Data in the window but no dead zone: no hint to move the window, still the latest time.
    beta = _get(client, "/api/v1/coverage/dead-zones", {**WINDOW, "operator": "Beta", "park": "p1"}).json()
    assert beta["features"] == [] and beta["latest"] and "nothing to report" in beta["message"]
    # An answer with features carries the latest time and no message.
    alpha = _get(client, "/api/v1/coverage/dead-zones", {**WINDOW, "operator": "alpha"}).json()
    assert alpha["features"] and alpha["latest"] and "message" not in alpha
    # An empty CSV still has its header, and the latest time travels in a header.
    r = _get(client, "/api/v1/export/dead-zones", {**long_ago, "format": "csv"})
    assert r.text == "lon,lat,wkt\n" and r.headers["X-Parkwatch-Latest"] == latest
    kml = _get(client, "/api/v1/export/dead-zones", {**long_ago, "format": "kml"}).text
    assert f"the latest reading for this selection is from {latest}" in kml
    unknown_operator = _get(client, "/api/v1/coverage/dead-zones", {**WINDOW, "operator": "Gamma"}).json()
    assert unknown_operator["latest"] is None and "/api/v1/coverage/operators" in unknown_operator["message"]
