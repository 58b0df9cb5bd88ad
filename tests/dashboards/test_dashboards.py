"""Static checks of the Grafana dashboards: schemas, datasource references, uids, layout, layout of data."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from analytics.signal import DEFAULT_PROFILE
from dashboards import build
from dashboards.influxql import covered_indicator, rsrp_thresholds_steps
from dashboards.panels import API_DATASOURCE_UID, DATASOURCE_UID, MIXED_DATASOURCE_UID
from tests.dashboards.model import (
    PROVISIONING,
    load_dashboards,
    load_schema,
    panels,
    provisioned_datasources,
    queries,
    walk,
)
from tests.dashboards.simdata import Scenario, lines

DASHBOARDS = load_dashboards()
MIXED = ("datasource", MIXED_DATASOURCE_UID)
# Every parametrised test below walks these; an empty load would make them pass vacuously.
assert set(DASHBOARDS) == {"park-operations", "coverage", "gateway-fleet"}, sorted(DASHBOARDS)
EXPECTED_UIDS = {
    "park-operations": "parkwatch-park-operations",
    "coverage": "parkwatch-coverage",
    "gateway-fleet": "parkwatch-gateway-fleet",
}


def test_checked_in_json_is_in_sync_with_the_code() -> None:
    assert build.out_of_sync() == [], "run `python -m dashboards.build` and commit dashboards/json"


def test_build_check_flags_a_stale_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    build.write_all(tmp_path)
    assert build.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "coverage.json").write_text("{}\n")
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    assert "coverage" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_validates_against_grafana_schema(name: str) -> None:
    schema = load_schema("dashboard")
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(DASHBOARDS[name]), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _panel_schema(panel_type: str, definition: str) -> dict[str, Any] | None:
    schema = load_schema(panel_type.replace("-", ""))
    if definition not in schema["definitions"]:
        return None
    return {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_options_validate_against_their_panel_schema(name: str) -> None:
    checked = 0
    for panel in panels(DASHBOARDS[name]):
        if panel["type"] == "row":
            continue
        options = _panel_schema(panel["type"], "Options")
        assert options is not None, f"no options schema for panel type {panel['type']}"
        errors = list(jsonschema.Draft7Validator(options).iter_errors(panel["options"]))
        assert not errors, f"{panel['title']}: {errors[0].message} at {list(errors[0].absolute_path)}"
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        field_schema = _panel_schema(panel["type"], "FieldConfig")
        if custom is not None and field_schema is not None:
            errors = list(jsonschema.Draft7Validator(field_schema).iter_errors(custom))
            assert not errors, f"{panel['title']} fieldConfig.custom: {errors[0].message}"
        checked += 1
    assert checked >= 10


def test_dashboard_uids_are_stable_and_unique() -> None:
    assert {name: d["uid"] for name, d in DASHBOARDS.items()} == EXPECTED_UIDS


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_unique_and_grid_without_overlap(name: str) -> None:
    ids = [p["id"] for p in panels(DASHBOARDS[name])]
    assert ids, f"{name} has no panels"
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for p in panels(DASHBOARDS[name]):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"panel {p.get('title')} overlaps another"
        occupied |= cells


def test_provisioned_datasource_is_influxql_with_token_auth() -> None:
    (ds,) = [d for d in provisioned_datasources() if d["type"] == "influxdb"]
    assert ds["uid"] == DATASOURCE_UID
    assert ds["type"] == "influxdb"
    assert ds["jsonData"]["version"] == "InfluxQL"
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"]["httpHeaderValue1"].startswith("Token $")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_datasource_reference_resolves_to_the_provisioned_datasource(name: str) -> None:
    provisioned = {(ds["type"], ds["uid"]) for ds in provisioned_datasources()}
    refs = [d["datasource"] for d in walk(DASHBOARDS[name]) if "datasource" in d]
    assert len(refs) > 10
    for ref in refs:
        assert (ref["type"], ref["uid"]) in provisioned | {MIXED}, ref
    # A panel names Grafana's "-- Mixed --" datasource exactly when its targets use several.
    for panel in panels(DASHBOARDS[name]):
        used = {(t["datasource"]["type"], t["datasource"]["uid"]) for t in panel.get("targets", [])}
        if used:
            expected = MIXED if len(used) > 1 else next(iter(used))
            assert (panel["datasource"]["type"], panel["datasource"]["uid"]) == expected, panel["title"]


def test_dashboard_provider_points_at_a_folder_of_json_files() -> None:
    import yaml

    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "parkwatch.yaml").read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")


def test_template_variables_park_operator_technology() -> None:
    names = {name: {v["name"] for v in d["templating"]["list"]} for name, d in DASHBOARDS.items()}
    assert {"park", "operator", "tech"} <= names["coverage"]
    assert "park" in names["park-operations"] and "park" in names["gateway-fleet"]
    query_variables = [
        v for d in DASHBOARDS.values() for v in d["templating"]["list"] if v["type"] == "query"
    ]
    assert query_variables, "no query template variables"
    for d in DASHBOARDS.values():
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                assert v["query"].startswith("SHOW TAG VALUES")


def test_map_colours_follow_the_signal_profile() -> None:
    geomaps = [p for p in panels(DASHBOARDS["coverage"]) if p["type"] == "geomap"]
    assert geomaps
    steps = geomaps[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, *DEFAULT_PROFILE.thresholds("LTE").rsrp_lower_dbm]
    assert [(s["value"], s["color"]) for s in steps] == rsrp_thresholds_steps()
    layers = geomaps[0]["options"]["layers"]
    assert [layer["location"]["latitude"] for layer in layers] == ["lat"] * len(layers)


@pytest.mark.parametrize(
    ("rsrp_dbm", "covered"), [(-31.0, 1), (-109.9, 1), (-110.0, 1), (-110.1, 0), (-156.0, 0)]
)
def test_covered_indicator_is_exact_over_the_contract_range(rsrp_dbm: float, covered: int) -> None:
    import math

    expr = covered_indicator("rsrp_dbm", -110.0)
    assert expr == 'floor(("rsrp_dbm" - (-110)) / 1000) + 1'
    assert math.floor((rsrp_dbm + 110.0) / 1000) + 1 == covered


def _known_names() -> set[str]:
    """Measurements, tag keys and field keys of what the ingester writes for the test scenario."""
    names = {"time"}
    scenario_lines = list(lines(Scenario.ending_at(1_800_000_000, hours=0.5)))
    assert len(scenario_lines) > 100, "the test scenario wrote almost nothing"
    for line in scenario_lines:
        series, fields, _ = line.rsplit(" ", 2) if '"' not in line else _split_quoted(line)
        measurement, *tags = series.split(",")
        names.add(measurement)
        names |= {t.split("=", 1)[0] for t in tags}
        names |= {f.split("=", 1)[0] for f in fields.split(",")}
    return names


def _split_quoted(line: str) -> tuple[str, str, str]:
    """Series, field set and timestamp of a line whose string fields may hold spaces or commas."""
    series, rest = line.split(" ", 1)
    fields_text, ts = rest.rsplit(" ", 1)
    keys = re.findall(r'(?:^|,)(\w+)=(?:"(?:[^"\\]|\\.)*"|[^,]*)', fields_text)
    return series, ",".join(f"{k}=" for k in keys), ts


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_queries_name_only_stored_measurements_tags_and_fields(name: str) -> None:
    known = _known_names()
    dashboard_queries = list(queries(name, DASHBOARDS[name]))
    assert dashboard_queries, f"{name} has no queries"
    for query in dashboard_queries:
        aliases = set(re.findall(r'AS "(\w+)"', query.text))
        for ident in re.findall(r'"(\w+)"', query.text):
            assert ident in known or ident in aliases, f"{query}: unknown name {ident!r}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_colour_overrides_match_a_series_alias(name: str) -> None:
    """Grafana names an InfluxQL series after its alias (else ``measurement.column``)."""
    overrides = [o for p in panels(DASHBOARDS[name]) for o in p.get("fieldConfig", {}).get("overrides", [])]
    assert overrides or name == "gateway-fleet", f"{name} has no colour overrides"
    for panel in panels(DASHBOARDS[name]):
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            aliases = {t.get("alias") for t in panel["targets"]}
            for field_name in override["matcher"]["options"]["names"]:
                assert field_name in aliases, f"{panel['title']}: no series is named {field_name!r}"


def test_the_coverage_dashboard_reads_dead_zones_from_the_api_not_from_influxql() -> None:
    """One definition: no InfluxQL query decides what is dead; the API's dead-zone route does."""
    from api.exports import MEDIA_TYPES
    from dashboards.coverage import API_PARAMS, DEAD_ZONES_PATH
    from tests.dashboards.model import api_requests

    dashboard = DASHBOARDS["coverage"]
    for query in queries("coverage", dashboard):
        assert "dead" not in query.text.lower() and 'sinr_db" <' not in query.text, query
    requests = api_requests(dashboard)
    assert {r.panel for r in requests} == {"Coverage cells and dead zones", "Dead-zone cells", "Dead zones"}
    for r in requests:
        assert r.target["datasource"] == {
            "type": "yesoreyeram-infinity-datasource",
            "uid": API_DATASOURCE_UID,
        }
        assert r.path == DEAD_ZONES_PATH == "/api/v1/coverage/dead-zones"
        assert r.params == dict(API_PARAMS)
        assert r.params == {
            "park": "${park}",
            "operator": "${operator}",
            "tech": "${tech}",
            "from": "${__from:date:iso}",
            "to": "${__to:date:iso}",
            "limit": "1000",
        }
        # Parsed in Grafana's backend (the key stays there), one row per feature.
        assert (r.target["parser"], r.target["source"], r.target["type"]) == ("backend", "url", "json")
        assert r.target["root_selector"] == "features"
    assert "geojson" in MEDIA_TYPES
    # The variables feed those parameters one value each: the API takes one park, operator, tech.
    for var in dashboard["templating"]["list"]:
        if var["name"] in ("park", "operator", "tech"):
            assert var["multi"] is False and var["includeAll"] is False, var["name"]


def test_api_panel_parameters_are_those_of_the_api_map_and_exports() -> None:
    """Every parameter the panels send is declared by the dead-zone route and its export."""
    import tempfile
    from pathlib import Path

    import duckdb
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.registry import Registry
    from dashboards.coverage import API_PARAMS
    from storage.query_duckdb import DuckDBQuery
    from tests.api.conftest import api_settings

    with tempfile.TemporaryDirectory() as tmp:
        duckdb.connect(str(Path(tmp) / "empty.duckdb")).close()
        backend = DuckDBQuery(path=Path(tmp) / "empty.duckdb")
        app = create_app(api_settings(), backend=backend, registry=Registry(Path(tmp) / "r.sqlite"))
        with TestClient(app) as client:
            spec = client.get("/openapi.json").json()
        backend.close()
    max_page = api_settings().api.max_page_size
    for path in ("/api/v1/coverage/dead-zones", "/api/v1/export/dead-zones"):
        declared = {p["name"] for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        sent = set(dict(API_PARAMS))
        if path.startswith("/api/v1/export"):
            sent -= {"limit"}  # an export is never paged
        assert sent <= declared, (path, sent - declared)
    assert int(dict(API_PARAMS)["limit"]) <= max_page
    # The built-in map asks the same route.
    app_js = (PROVISIONING.parents[1] / "api" / "web" / "static" / "app.js").read_text()
    assert 'api("coverage/dead-zones"' in app_js


def test_api_panel_columns_name_properties_of_a_dead_zone_feature() -> None:
    import inspect

    from analytics.deadzones import DeadZone
    from dashboards.coverage import ZONE_COLUMNS

    source = inspect.getsource(DeadZone.feature)
    for column in ZONE_COLUMNS:
        prop = column.selector.removeprefix("properties.")
        assert f'"{prop}":' in source, column.selector
    datasource = next(d for d in provisioned_datasources() if d["uid"] == API_DATASOURCE_UID)
    assert datasource["type"] == "yesoreyeram-infinity-datasource"
    assert datasource["jsonData"]["httpHeaderName1"] == "X-API-Key"
    assert datasource["secureJsonData"]["httpHeaderValue1"] == "$PARKWATCH_API_KEY"
