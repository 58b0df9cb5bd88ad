"""What the endpoints answer on the test data set: coverage, KPIs, alarms, fleet, exports, paging."""

from __future__ import annotations

import csv
import io
import time
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import WINDOW, headers
from tests.api.data import HOLE, T0

ADMIN = headers("admin")


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def test_cells_geojson_paging_and_filters(client: TestClient) -> None:
    first = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "park": "p1", "limit": 50}, headers=ADMIN
    ).json()
    assert first["type"] == "FeatureCollection" and first["resolution"] == 10
    assert len(first["features"]) == 50 and first["next_offset"] == 50 and first["total"] > 50
    second = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "park": "p1", "limit": 50, "offset": 50}, headers=ADMIN
    ).json()
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    nr = client.get(
        "/api/v1/coverage/cells",
        params={**WINDOW, "operator": "Beta", "tech": "NR", "limit": 5000},
        headers=ADMIN,
    ).json()
    assert nr["total"] > 0
    assert {(f["properties"]["operator"], f["properties"]["tech"]) for f in nr["features"]} == {
        ("Beta", "NR")
    }
    coarse = client.get(
        "/api/v1/coverage/cells", params={**WINDOW, "resolution": 8, "limit": 5000}, headers=ADMIN
    ).json()
    assert coarse["resolution"] == 8 and 0 < coarse["total"] < first["total"]
    assert sum(f["properties"]["samples"] for f in coarse["features"]) == 1800


def test_dead_zone_found_where_it_was_planted(client: TestClient) -> None:
    fc = client.get(
        "/api/v1/coverage/dead-zones", params={**WINDOW, "operator": "Alpha", "tech": "LTE"}, headers=ADMIN
    ).json()
    top = fc["features"][0]["properties"]
    # The planted hole has a handful of readings per cell: the cells with enough evidence are
    # dead at 90 % confidence, the others uncertain, none covered.
    assert top["rank"] == 1 and top["operators"] == ["Alpha"] and top["cell_count"] >= 1
    assert top["cause"] == "coverage" and top["confidence"] >= 0.9 and top["kind"] == "dead"
    lon, lat = top["centroid"]
    assert abs(lat - HOLE[0]) < 0.002 and abs(lon - HOLE[1]) < 0.002
    assert top["worst_rsrp_dbm"] < -110 and top["area_m2"] > 10_000
    cells = client.get(
        "/api/v1/coverage/cells",
        params={**WINDOW, "operator": "Alpha", "tech": "LTE", "limit": 1000},
        headers=ADMIN,
    ).json()["features"]
    in_hole = [
        f["properties"]
        for f in cells
        if abs(f["properties"]["center"][1] - HOLE[0]) * 111_320 < 60
        and abs(f["properties"]["center"][0] - HOLE[1]) * 104_000 < 60
    ]
    assert in_hole and all(c["state"] in ("dead", "uncertain") for c in in_hole)
    assert any(f["properties"]["state"] == "dead" for f in cells)
    areas = [f["properties"]["area_m2"] for f in fc["features"]]
    assert areas == sorted(areas, reverse=True)
    beta = client.get(
        "/api/v1/coverage/dead-zones", params={**WINDOW, "operator": "Beta"}, headers=ADMIN
    ).json()
    assert beta["total"] == 0


def test_summary_and_gaps(client: TestClient) -> None:
    items = client.get("/api/v1/coverage/summary", params={**WINDOW, "park": "p1"}, headers=ADMIN).json()[
        "items"
    ]
    alpha = next(i for i in items if i["operator"] == "Alpha" and i["tech"] == "LTE")
    assert alpha["dead_zones"] >= 1 and alpha["area_share_by_class"]["none"] > 0
    assert 0 < alpha["park_area_measured_share"] <= 1
    assert alpha["change"] is None  # nothing was measured the week before
    later = {"from": "2026-11-03T00:00:00Z", "to": "2026-11-04T00:00:00Z", "park": "p1"}
    items = client.get("/api/v1/coverage/summary", params=later, headers=ADMIN).json()["items"]
    day2 = next(i for i in items if i["operator"] == "Alpha" and i["tech"] == "LTE")
    assert set(day2["change"]) == {
        "measured_area_m2",
        "dead_zones",
        "dead_zone_area_m2",
        "area_share_by_class",
    }
    gaps = client.get(
        "/api/v1/coverage/gaps", params={**WINDOW, "tech": "NR", "operator": "Beta"}, headers=ADMIN
    ).json()
    assert gaps["total"] > 0 and {f["properties"]["park"] for f in gaps["features"]} == {"p1"}


def test_oee_energy_and_machines_match_the_hand_computed_fixture(client: TestClient) -> None:
    m = client.get("/api/v1/factory/oee", params={**WINDOW, "level": "machine"}, headers=ADMIN).json()[
        "items"
    ]
    assert len(m) == 1
    row = m[0]
    # 40 min running, 10 fault, 10 idle; the last (idle) bucket holds for max_hold (300 s): planned 3840 s.
    assert row["run_s"] == 2400 and row["fault_s"] == 600 and row["planned_s"] == 3840
    assert row["parts"] == 240 and row["rejects"] == 12
    assert row["availability"] == pytest.approx(2400 / 3840, abs=1e-4)
    assert row["performance"] == pytest.approx(240 * 9 / 2400, abs=1e-4)
    assert row["quality"] == pytest.approx(228 / 240, abs=1e-4)
    for level in ("line", "factory", "park"):
        up = client.get("/api/v1/factory/oee", params={**WINDOW, "level": level}, headers=ADMIN).json()[
            "items"
        ]
        assert [u["oee"] for u in up] == [row["oee"]]
    machines = client.get("/api/v1/factory/machines", params=WINDOW, headers=ADMIN).json()["items"]
    assert [(x["dev"], x["state"], x["oee"]) for x in machines] == [("cnc-1", "idle", row["oee"])]
    assert machines[0]["last_bucket_ms"] == ms(T0) + 59 * 60_000  # the last minute bucket of the hour
    energy = client.get("/api/v1/factory/energy", params={**WINDOW, "level": "line"}, headers=ADMIN).json()[
        "items"
    ]
    assert energy == [
        {
            "park": "p1",
            "factory": "f1",
            "line": "l1",
            "energy_kwh": 75.0,
            "peak_kw": 100.0,
            "demand_interval_s": 900,
        }
    ]


def test_alarms_raised_and_cleared_by_the_evaluator(client: TestClient) -> None:
    engine = client.app.state.alarm_engine  # type: ignore[attr-defined]
    # spindle-hot: above 85 from 20 min for 90 s: raised at 21 min (60 s), cleared at 21.5 min.
    engine.evaluate(ms(T0) + 1_280_000)
    hot = client.get("/api/v1/alarms", params={"rule_id": "spindle-hot"}, headers=ADMIN).json()["items"]
    assert [(a["source"], a["state"], a["priority"]) for a in hot] == [
        ("gw-1/cnc-1", "active_unacknowledged", "critical")
    ]
    assert hot[0]["raised_at"] == "2026-11-02T00:21:00.000Z"
    engine.evaluate(ms(T0) + 1_300_000)
    hot = client.get("/api/v1/alarms", params={"rule_id": "spindle-hot"}, headers=ADMIN).json()["items"]
    assert [a["state"] for a in hot] == ["cleared_unacknowledged"]
    # The data are weeks old: every gateway is silent now, so each has an active offline alarm.
    engine.evaluate(int(time.time() * 1000))
    items = client.get("/api/v1/alarms", params={"rule_id": "gateway_offline"}, headers=ADMIN).json()["items"]
    assert {(a["park"], a["source"], a["state"]) for a in items} == {
        ("p1", "gw-1", "active_unacknowledged"),
        ("p1", "gw-2", "active_unacknowledged"),
        ("p2", "gw-9", "active_unacknowledged"),
    }
    # ... and a gateway offline suppresses its devices' alarms.
    hot = client.get("/api/v1/alarms", params={"rule_id": "spindle-hot"}, headers=ADMIN).json()["items"]
    assert [(a["state"], a["suppressed_by"]) for a in hot] == [("suppressed", "gateway gw-1 offline")]
    crit = client.get("/api/v1/alarms", params={"priority": "critical"}, headers=ADMIN).json()["items"]
    assert {a["rule_id"] for a in crit} == {"spindle-hot"}


def test_fleet(client: TestClient) -> None:
    gws = {g["gw"]: g for g in client.get("/api/v1/gateways", headers=ADMIN).json()["items"]}
    assert set(gws) == {"gw-1", "gw-2", "gw-9"}
    g2 = client.get("/api/v1/gateways/gw-2", headers=ADMIN).json()
    assert g2["config_hash"] == "def" and g2["backlog"] == 7 and g2["dropped"] == 1 and not g2["online"]
    g1 = gws["gw-1"]
    assert g1["loss"]["missing"] == 2 and g1["loss"]["duplicated"] == 1
    assert g1["uplink"] == {"operator": "Alpha", "tech": "LTE", "rsrp_dbm": -90.0, "sinr_db": 10.0}
    assert g1["last_seen_ms"] == ms(T0) + 55 * 60_000  # the ledger snapshot is newer than the status


def test_broadband(client: TestClient) -> None:
    by_gw = client.get("/api/v1/broadband/summary", params=WINDOW, headers=ADMIN).json()["items"]
    assert [(r["park"], r["gw"], r["samples"]) for r in by_gw] == [("p1", "gw-1", 30), ("p1", "gw-2", 30)]
    assert all(r["ipv6_share"] == pytest.approx(20 / 30, abs=1e-3) for r in by_gw)
    by_park = client.get("/api/v1/broadband/summary", params={**WINDOW, "by": "park"}, headers=ADMIN).json()[
        "items"
    ]
    assert [(r["park"], r["samples"]) for r in by_park] == [("p1", 60)] and "gw" not in by_park[0]
    assert by_park[0]["class"] in ("meets", "partial", "fails")


def test_exports(client: TestClient) -> None:
    planner = headers("planner-p1")
    gj = client.get("/api/v1/export/cells", params={**WINDOW, "format": "geojson"}, headers=planner)
    assert gj.headers["content-type"].startswith("application/geo+json")
    assert gj.json()["type"] == "FeatureCollection" and gj.json()["features"]
    text = client.get("/api/v1/export/cells", params={**WINDOW, "format": "csv"}, headers=planner).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(gj.json()["features"]) and {r["park"] for r in rows} == {"p1"}
    kml = client.get("/api/v1/export/dead-zones", params={**WINDOW, "format": "kml"}, headers=planner)
    root = ET.fromstring(kml.content)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert root.findall(".//k:Placemark", ns) and root.findall(".//k:Polygon", ns)
    assert "attachment" in kml.headers["content-disposition"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/coverage/cells", {"park": "p1' OR '1'='1"}),
        ("/api/v1/coverage/cells", {"park": "p1; DROP TABLE cellular"}),
        ("/api/v1/coverage/cells", {"operator": "Alpha' OR tech='NR"}),
        ("/api/v1/coverage/cells", {"operator": "x" * 65}),
        ("/api/v1/coverage/cells", {"tech": "LTE;"}),
        ("/api/v1/coverage/cells", {"from": "yesterday"}),
        ("/api/v1/coverage/cells", {"from": "2026-11-08T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
        ("/api/v1/coverage/cells", {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        ("/api/v1/coverage/cells", {"from": "1900-01-01T00:00:00Z", "to": "1900-01-02T00:00:00Z"}),
        ("/api/v1/coverage/cells", {"to": "9999-12-31T23:59:59Z"}),
        ("/api/v1/coverage/cells", {"from": "1e30"}),
        ("/api/v1/coverage/cells", {"bbox": "1,2,3"}),
        ("/api/v1/coverage/cells", {"bbox": "106.8,20.7,106.7,20.9"}),
        ("/api/v1/coverage/cells", {"bbox": "200,0,201,1"}),
        ("/api/v1/coverage/cells", {"bbox": "NaN,0,1,1"}),
        ("/api/v1/coverage/cells", {"resolution": "11"}),
        ("/api/v1/coverage/cells", {"resolution": "3"}),
        ("/api/v1/coverage/cells", {"resolution": "99999999999999999999"}),
        ("/api/v1/coverage/cells", {"limit": "0"}),
        ("/api/v1/coverage/cells", {"limit": "100000"}),
        ("/api/v1/coverage/cells", {"offset": "-1"}),
        ("/api/v1/coverage/dead-zones", {"max_class": "terrible"}),
        ("/api/v1/factory/oee", {"level": "galaxy"}),
        ("/api/v1/broadband/summary", {"gw": "../../etc/passwd"}),
        ("/api/v1/alarms", {"state": "maybe"}),
        ("/api/v1/export/cells", {"format": "shp"}),
        ("/api/v1/gateways/bad%20id", {}),
    ],
)
def test_hostile_filters_are_422(client: TestClient, path: str, params: dict[str, str]) -> None:
    resp = client.get(path, params=params, headers=ADMIN)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_parameter" and resp.json()["error"]["message"]


def test_unknown_route_is_json_404(client: TestClient) -> None:
    resp = client.get("/api/v1/nope", headers=ADMIN)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_identical_reads_are_cached_per_key(store: object, tmp_path: object) -> None:
    from pathlib import Path

    from api.app import create_app
    from api.registry import Registry
    from storage.query_duckdb import DuckDBQuery
    from tests.api.conftest import api_settings

    backend = DuckDBQuery(path=Path(str(store)))
    app = create_app(
        api_settings(api={"cache_ttl_s": 60.0}),
        backend=backend,
        registry=Registry(Path(str(tmp_path)) / "r.sqlite"),
    )
    with TestClient(app) as c:
        first = c.get("/api/v1/coverage/cells", params=WINDOW, headers=headers("viewer-p1"))
        again = c.get("/api/v1/coverage/cells", params=WINDOW, headers=headers("viewer-p1"))
        assert "x-cache" not in first.headers and again.headers["x-cache"] == "hit"
        assert again.content == first.content
        other = c.get("/api/v1/coverage/cells", params=WINDOW, headers=headers("viewer-p2"))
        assert "x-cache" not in other.headers
        assert {f["properties"]["park"] for f in other.json()["features"]} == {"p2"}
        assert c.get("/api/v1/coverage/cells", params=WINDOW).status_code == 401
    backend.close()
