"""Provisioning: register a gateway, its credentials and edge config, and broker files that a real
Mosquitto 2 accepts (the gateway may publish only as itself)."""

from __future__ import annotations

import os
import queue
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from api.mosquitto import acl_file, hash_password, verify_password
from settings.edge import EdgeSettings
from settings.loader import settings_from_dict
from tests.api.conftest import headers
from tests.conftest import IN_CI
from tests.servers import ServerError, mosquitto_server

ENGINEER = headers("engineer-p1")
# Started as root, Mosquitto drops to its own user, which cannot read files in pytest's private
# temp dirs; stay root there (the files hold hashes of throw-away test passwords).
_RUN_AS = "user root\n" if os.geteuid() == 0 else ""
ADMIN = headers("admin")


def test_hash_format_and_verification() -> None:
    h = hash_password("s3cret", iterations=101, salt=b"0123456789ab")
    assert h.startswith("$7$101$MDEyMzQ1Njc4OWFi$") and len(h.split("$")[4]) == 88
    assert verify_password("s3cret", h) and not verify_password("s3cret!", h)
    assert not verify_password("x", "$6$garbage")


def test_acl_grants_the_ingesters_rights_to_each_ingester_account_only() -> None:
    services = [
        "parkwatch-ingest-1",
        "parkwatch-ingest-2",
        "parkwatch-ingestx",
        "backup-svc",
        "parkwatch-ingest-",
    ]
    text = acl_file(
        [("p1", "gw-1")], topic_root="parkwatch", ingest_username="parkwatch-ingest", services=services
    )
    users = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("user ")]
    assert users == ["parkwatch-ingest", "parkwatch-ingest-1", "parkwatch-ingest-2", "p1/gw-1"]
    block = text.split("user parkwatch-ingest-2\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [
        "topic read parkwatch/v1/+/+/up/#",
        "topic write parkwatch/v1/+/+/down/#",
        "topic read spBv1.0/#",
        "topic write spBv1.0/STATE/#",
        "topic write spBv1.0/+/NCMD/#",
    ]


def test_register_rotate_and_duplicate(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/gateways", json={"park": "p1", "gw": "gw-reg", "description": "roof"}, headers=ENGINEER
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["mqtt"]["username"] == "p1/gw-reg"
    # The edge config is a working agent config: it loads as the agent's own settings.
    cfg = settings_from_dict(EdgeSettings, tomllib.loads(body["edge_config"]), where="edge_config")
    assert (cfg.agent.park, cfg.agent.gateway) == ("p1", "gw-reg")
    assert (cfg.broker.username, cfg.broker.password) == ("p1/gw-reg", body["mqtt"]["password"])
    # The deploy broker makes the username the client id; the agent uses the same id itself.
    assert cfg.client_id == "p1/gw-reg"
    passwd = client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    line = next(x for x in passwd.splitlines() if x.startswith("p1/gw-reg:"))
    assert verify_password(body["mqtt"]["password"], line.split(":", 1)[1])
    assert body["mqtt"]["password"] not in passwd
    dup = client.post("/api/v1/gateways", json={"park": "p1", "gw": "gw-reg"}, headers=ENGINEER)
    assert dup.status_code == 409 and "credentials" in dup.json()["error"]["message"]
    rotated = client.post(
        "/api/v1/gateways/gw-reg/credentials", params={"park": "p1"}, headers=ENGINEER
    ).json()
    assert rotated["mqtt"]["password"] != body["mqtt"]["password"]
    passwd = client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text
    line = next(x for x in passwd.splitlines() if x.startswith("p1/gw-reg:"))
    assert verify_password(rotated["mqtt"]["password"], line.split(":", 1)[1])
    missing = client.post("/api/v1/gateways/gw-none/credentials", params={"park": "p1"}, headers=ENGINEER)
    assert missing.status_code == 404
    fleet = client.get("/api/v1/gateways/gw-reg", headers=ENGINEER).json()
    assert fleet["registered"] and fleet["description"] == "roof" and fleet["last_seen_ms"] is None
    bad = client.post("/api/v1/gateways", json={"park": "p1", "gw": "gw/+/#"}, headers=ENGINEER)
    assert bad.status_code == 422


def test_admin_creates_a_key_that_works_at_once(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/keys", json={"name": "anna", "role": "planner", "parks": ["p2"]}, headers=ADMIN
    )
    assert resp.status_code == 201
    key = resp.json()["key"]
    assert key.startswith("pwk_") and len(key) > 40
    h = {"Authorization": f"Bearer {key}"}
    assert (
        client.get(
            "/api/v1/export/cells",
            params={"park": "p2", "from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z"},
            headers=h,
        ).status_code
        == 200
    )
    assert client.get("/api/v1/coverage/cells", params={"park": "p1"}, headers=h).status_code == 403
    names = [k["name"] for k in client.get("/api/v1/keys", headers=ADMIN).json()["items"]]
    assert "anna" in names and key not in str(names)
    assert (
        client.post("/api/v1/keys", json={"name": "x", "parks": ["bad park"]}, headers=ADMIN).status_code
        == 422
    )


def _connect(port: int, username: str, password: str, client_id: str) -> tuple[mqtt.Client, ReasonCode]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    result: queue.Queue[ReasonCode] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, rc, _p: result.put(rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, result.get(timeout=10)


@pytest.mark.integration
def test_generated_files_work_in_a_real_mosquitto(client: TestClient, tmp_path: Path, unique: str) -> None:
    gw_a = client.post("/api/v1/gateways", json={"park": "p1", "gw": f"a-{unique}"}, headers=ENGINEER).json()
    client.post("/api/v1/gateways", json={"park": "p1", "gw": f"b-{unique}"}, headers=ENGINEER)
    ingest = client.post("/api/v1/provisioning/services/parkwatch-ingest", headers=ADMIN).json()
    (tmp_path / "passwd").write_text(client.get("/api/v1/provisioning/mosquitto/passwd", headers=ADMIN).text)
    (tmp_path / "acl").write_text(client.get("/api/v1/provisioning/mosquitto/acl", headers=ADMIN).text)
    try:
        broker = mosquitto_server(
            tmp_path / "broker",
            extra_conf=f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n{_RUN_AS}",
        )
        broker.start()
    except ServerError as exc:
        if IN_CI:
            pytest.fail(f"CI=true and Mosquitto is unavailable: {exc}")
        pytest.skip(str(exc))
    try:
        sub, rc = _connect(broker.port, "parkwatch-ingest", ingest["password"], f"ing-{unique}")
        assert not rc.is_failure
        got: queue.Queue[str] = queue.Queue()
        done: queue.Queue[bool] = queue.Queue()
        sub.on_message = lambda _c, _u, m: got.put(m.topic)
        sub.on_subscribe = lambda *_a: done.put(True)
        sub.subscribe("parkwatch/v1/+/+/up/#", qos=1)
        done.get(timeout=10)

        _, bad = _connect(broker.port, gw_a["mqtt"]["username"], "wrong-password", f"bad-{unique}")
        assert bad.is_failure

        pub, rc = _connect(broker.port, gw_a["mqtt"]["username"], gw_a["mqtt"]["password"], f"a-{unique}")
        assert not rc.is_failure
        own = f"parkwatch/v1/p1/a-{unique}/up/telemetry"
        other = f"parkwatch/v1/p1/b-{unique}/up/telemetry"
        pub.publish(other, b"spoof", qos=1).wait_for_publish(timeout=10)
        pub.publish(own, b"mine", qos=1).wait_for_publish(timeout=10)
        assert got.get(timeout=10) == own
        with pytest.raises(queue.Empty):
            got.get(timeout=1.0)
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()
    finally:
        broker.stop()
