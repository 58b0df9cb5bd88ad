"""Parks and gateway sites through the API: seeded from [[parks]], created, scoped, validated."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import headers

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[106.30, 20.90], [106.31, 20.90], [106.31, 20.91], [106.30, 20.91], [106.30, 20.90]]],
}


def test_static_parks_seed_the_registry(client: TestClient) -> None:
    got = client.get("/api/v1/parks/p1", headers=headers("viewer-p1"))
    assert got.status_code == 200
    assert got.json()["name"] == "Park one" and len(got.json()["boundary"]["coordinates"][0]) == 5


def test_create_update_delete_a_park_and_a_gateway_site(client: TestClient) -> None:
    admin = headers("admin")
    made = client.put(
        "/api/v1/parks/hd-byod",
        json={"name": "New area", "boundary": SQUARE, "timezone": "Asia/Ho_Chi_Minh"},
        headers=admin,
    )
    assert made.status_code == 200, made.text
    assert made.json()["created"] is True and made.json()["timezone"] == "Asia/Ho_Chi_Minh"
    again = client.put("/api/v1/parks/hd-byod", json={"name": "Renamed"}, headers=admin)
    assert again.json()["created"] is False and again.json()["boundary"] is None
    site = client.put(
        "/api/v1/parks/hd-byod/gateways/gw-fixed", json={"lat": 20.905, "lon": 106.305}, headers=admin
    )
    assert site.status_code == 200 and site.json()["lat"] == 20.905
    listed = client.get("/api/v1/parks/hd-byod/gateways", headers=admin).json()
    assert [g["gw"] for g in listed["items"]] == ["gw-fixed"]
    assert client.delete("/api/v1/parks/hd-byod", headers=admin).status_code == 200
    assert client.get("/api/v1/parks/hd-byod", headers=admin).status_code == 404
    assert client.get("/api/v1/parks/hd-byod/gateways", headers=admin).json()["items"] == []


def test_bad_parks_and_sites_are_refused_with_the_reason(client: TestClient) -> None:
    admin = headers("admin")
    flipped = {"type": "Polygon", "coordinates": [[[20.9, 106.3], [20.9, 106.4], [21.0, 106.4]]]}
    bad = client.put("/api/v1/parks/hd-bad", json={"boundary": flipped}, headers=admin)
    assert bad.status_code == 422 and "[lon, lat]" in bad.text
    zone = client.put("/api/v1/parks/hd-bad", json={"timezone": "Mars/Olympus"}, headers=admin)
    assert zone.status_code == 422 and "IANA" in zone.text
    half = client.put("/api/v1/parks/p1/gateways/gw-half", json={"lat": 20.8}, headers=admin)
    assert half.status_code == 422 and "both lat and lon" in half.text
    orphan = client.put("/api/v1/parks/nowhere/gateways/gw-1", json={}, headers=admin)
    assert orphan.status_code == 404
    assert client.put("/api/v1/parks/bad%0A", json={}, headers=admin).status_code == 422


def test_keys_see_and_change_only_their_parks(client: TestClient) -> None:
    assert [p["id"] for p in client.get("/api/v1/parks", headers=headers("viewer-p2")).json()["items"]] == []
    assert client.put("/api/v1/parks/p1", json={}, headers=headers("engineer-p1")).status_code == 403
    assert client.get("/api/v1/parks/p1", headers=headers("viewer-p2")).status_code == 403
    site = client.put("/api/v1/parks/p1/gateways/gw-p1", json={}, headers=headers("engineer-p1"))
    assert site.status_code == 200
    other = client.put("/api/v1/parks/p1/gateways/gw-p1", json={}, headers=headers("engineer-p2"))
    assert other.status_code == 403


def test_a_park_created_at_run_time_gets_survey_gaps_and_coverage_answers(client: TestClient) -> None:
    admin = headers("admin")
    before = client.get("/api/v1/coverage/gaps", params={"park": "hd-new", "resolution": 9}, headers=admin)
    assert before.status_code == 404  # neither configured nor ever measured
    made = client.put("/api/v1/parks/hd-new", json={"name": "New area", "boundary": SQUARE}, headers=admin)
    assert made.status_code == 200, made.text
    gaps = client.get("/api/v1/coverage/gaps", params={"park": "hd-new", "resolution": 9}, headers=admin)
    assert gaps.status_code == 200, gaps.text
    cells = [f["properties"]["h3"] for f in gaps.json()["features"]]
    # About 1.1 km x 1.1 km at resolution 9 (~0.1 km2 a cell): a dozen cells, none measured.
    assert 5 <= len(cells) <= 40 and len(set(cells)) == len(cells)
    assert all(f["properties"]["park"] == "hd-new" for f in gaps.json()["features"])
