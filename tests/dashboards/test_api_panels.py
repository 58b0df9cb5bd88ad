"""Grafana's dead zones are the API's: the same cells on real InfluxDB data, in every view.

The coverage dashboard's dead-zone panels send the request written in their Infinity target
(path and parameters, Grafana's variables filled from the dashboard's own variable queries on a
real InfluxDB). That request goes through the real API app over the same InfluxDB, and its dead
cells must equal those of the API's cell grid, its dead-zone route and the GeoJSON, CSV and KML
exports, for every park, operator and technology the dashboard offers.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import key_hash, new_key
from api.registry import Registry
from storage.query_influx import InfluxQuery
from tests.api.conftest import WINDOW, api_settings, headers
from tests.api.data import dataset, influx_query, load_influx
from tests.dashboards.grafana_macros import TimeRange, format_value, interpolate, interpolate_url_value
from tests.dashboards.model import ApiRequest, api_requests, load_dashboards
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

COVERAGE = load_dashboards()["coverage"]
KML_NS = {"k": "http://www.opengis.net/kml/2.2"}


@dataclass(frozen=True, slots=True)
class Stack:
    client: TestClient
    grafana_key: str
    influx_url: str
    db: str


@pytest.fixture(scope="module")
def stack(influxdb: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_panels_{uuid.uuid4().hex[:8]}"
    load_influx(url, db, dataset())
    registry = Registry(tmp_path_factory.mktemp("panels") / "registry.sqlite")
    # What the compose file's grafana-api-key job does: a viewer key for every park.
    key = new_key()
    registry.add_key(sha256=key_hash(key), name="grafana", role="viewer", parks=())
    backend = InfluxQuery(url=url, database=db)
    app = create_app(api_settings(), backend=backend, registry=registry)
    with TestClient(app) as client:
        yield Stack(client=client, grafana_key=key, influx_url=url, db=db)
    backend.close()
    influx_query(url, db, f'DROP DATABASE "{db}"')


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


TIME_RANGE = TimeRange(from_ms=_ms(WINDOW["from"]), to_ms=_ms(WINDOW["to"]))


def _tag_values(stack: Stack, query: str, variables: dict[str, str]) -> list[str]:
    text = interpolate(query, TIME_RANGE, variables)
    (res,) = influx_query(stack.influx_url, stack.db, text)["results"]
    assert "error" not in res, (text, res)
    return sorted({str(v[1]) for s in res.get("series", []) for v in s["values"]})


def _selections(stack: Stack) -> list[dict[str, str]]:
    """Every park/operator/technology the dashboard's variables offer, from real InfluxDB."""
    queries = {v["name"]: v["query"] for v in COVERAGE["templating"]["list"]}
    out = []
    for park in _tag_values(stack, queries["park"], {}):
        for operator in _tag_values(stack, queries["operator"], {"park": format_value([park], multi=False)}):
            v2 = {
                "park": format_value([park], multi=False),
                "operator": format_value([operator], multi=False),
            }
            for tech in _tag_values(stack, queries["tech"], v2):
                out.append({"park": park, "operator": operator, "tech": tech})
    return out


def _panel_request(stack: Stack, request: ApiRequest, selection: dict[str, str]) -> list[dict[str, Any]]:
    """Send the panel's request as Grafana would; the rows the Infinity parser starts from."""
    params = {k: interpolate_url_value(v, TIME_RANGE, selection) for k, v in request.params.items()}
    r = stack.client.get(request.path, params=params, headers={"X-API-Key": stack.grafana_key})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()[request.target["root_selector"]]
    return rows


def _column(row: dict[str, Any], selector: str) -> Any:
    value: Any = row
    for part in selector.split("."):
        value = value[part]
    return value


def _zone_cells(features: list[dict[str, Any]]) -> set[str]:
    return {c for f in features for c in f["properties"]["cells"]}


def _api_dead_cells(stack: Stack, sel: dict[str, str]) -> set[str]:
    r = stack.client.get(
        "/api/v1/coverage/cells", params={**WINDOW, **sel, "limit": 5000}, headers=headers("admin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_offset"] is None
    return {f["properties"]["h3"] for f in r.json()["features"] if f["properties"]["state"] == "dead"}


def _export(stack: Stack, sel: dict[str, str], fmt: str) -> str:
    r = stack.client.get(
        "/api/v1/export/dead-zones", params={**WINDOW, **sel, "format": fmt}, headers=headers("admin")
    )
    assert r.status_code == 200, r.text
    text: str = r.text
    return text


def _csv_cells(text: str) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return {c for row in rows for c in row["cells"].split(";") if c}


def _kml_cells(text: str) -> set[str]:
    root = ET.fromstring(text)
    out: set[str] = set()
    for data in root.iterfind(".//k:Placemark/k:ExtendedData/k:Data[@name='cells']/k:value", KML_NS):
        out |= {c for c in (data.text or "").split(";") if c}
    return out


def test_grafana_panels_show_the_dead_cells_of_the_api_and_the_exports(stack: Stack) -> None:
    requests = {r.panel: r for r in api_requests(COVERAGE)}
    assert set(requests) == {"Coverage cells and dead zones", "Dead-zone cells", "Dead zones"}
    selections = _selections(stack)
    assert len(selections) >= 4, selections
    dead: dict[tuple[str, str, str], int] = {}
    for sel in selections:
        api_cells = _api_dead_cells(stack, sel)
        route = stack.client.get(
            "/api/v1/coverage/dead-zones", params={**WINDOW, **sel}, headers=headers("admin")
        ).json()["features"]
        geojson = json.loads(_export(stack, sel, "geojson"))["features"]
        panel_rows = _panel_request(stack, requests["Dead zones"], sel)
        grafana_cells = {c for row in panel_rows for c in _column(row, "properties.cells")}
        stat_rows = _panel_request(stack, requests["Dead-zone cells"], sel)
        (stat_column,) = requests["Dead-zone cells"].target["columns"]
        stat_cells = sum(_column(row, stat_column["selector"]) for row in stat_rows)
        map_rows = _panel_request(stack, requests["Coverage cells and dead zones"], sel)
        assert api_cells == _zone_cells(route) == _zone_cells(geojson), sel
        assert (
            api_cells == _csv_cells(_export(stack, sel, "csv")) == _kml_cells(_export(stack, sel, "kml"))
        ), sel
        assert api_cells == grafana_cells, sel
        assert stat_cells == len(api_cells), sel
        # The map layer has a marker per zone, at the zone's centroid, and every column it names.
        assert len(map_rows) == len(route)
        for row in map_rows:
            for column in requests["Coverage cells and dead zones"].target["columns"]:
                _column(row, column["selector"])
        dead[(sel["park"], sel["operator"], sel["tech"])] = len(api_cells)
    # Operator Alpha's hole in park p1 is found; Beta has none there.
    assert dead[("p1", "Alpha", "LTE")] >= 1, dead
    assert dead[("p1", "Beta", "LTE")] == 0, dead
