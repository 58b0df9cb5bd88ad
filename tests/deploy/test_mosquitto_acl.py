"""The broker files generated from the gateway registry, loaded by a real Mosquitto 2.

Two gateways are registered as the API does; the deployment's ``broker-auth`` job
(``deploy/mosquitto/broker_auth.py``: the ingesters' service account, then
``parkwatch api mosquitto-files``) writes the files, loaded with the auth lines of
``deploy/mosquitto/mosquitto.conf``. A gateway may publish only under its own ``up/`` topics and
read only its own ``down/`` topics; the ingester reads every ``up/``; nobody else gets in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from api import mosquitto
from tests.conftest import _unavailable
from tests.deploy.broker_helpers import (
    DEPLOY_DIR,
    INGEST_USER,
    INGESTER_1,
    PARK,
    Broker,
    Client,
    auth_lines,
    deploy_broker,
    generate_files,
)
from tests.servers import ServerError, mosquitto_server

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path, topic_root: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    auth_dir, passwords = generate_files(tmp_path, topic_root, monkeypatch)
    try:
        server = mosquitto_server(tmp_path / "broker", extra_conf=auth_lines(auth_dir))
        server.start()
    except ServerError as exc:
        _unavailable(str(exc))
    yield Broker(server=server, root=topic_root, passwords=passwords)
    server.stop()


def _topic(b: Broker, gw: str, tail: str) -> str:
    return f"{b.root}/v1/{PARK}/{gw}/{tail}"


def test_gateway_publishes_only_as_itself_and_reads_only_its_own_commands(broker: Broker) -> None:
    ingest = Client(broker, INGEST_USER)
    gw_a = Client(broker, f"{PARK}/gw-a")
    try:
        assert not ingest.connected().is_failure
        assert not gw_a.connected().is_failure
        assert not ingest.subscribe(f"{broker.root}/v1/+/+/up/#").is_failure
        assert not gw_a.subscribe(_topic(broker, "gw-a", "down/#")).is_failure
        # Mosquitto grants a wildcard subscription and applies the ACL to each delivery.
        gw_a.subscribe(_topic(broker, "gw-b", "down/#"))

        assert not gw_a.publish(_topic(broker, "gw-a", "up/telemetry"), b"own").is_failure
        assert gw_a.publish(_topic(broker, "gw-b", "up/telemetry"), b"spoofed").is_failure
        assert gw_a.publish(_topic(broker, "gw-a", "down/config"), b"self-config").is_failure
        assert gw_a.publish(f"{broker.root}/v1/p2/gw-a/up/telemetry", b"other park").is_failure

        # The ingester may command gateways; each gateway hears only its own.
        assert not ingest.publish(_topic(broker, "gw-b", "down/command"), b"for b").is_failure
        assert not ingest.publish(_topic(broker, "gw-a", "down/command"), b"for a").is_failure

        assert ingest.received(within_s=1.0) == [(_topic(broker, "gw-a", "up/telemetry"), b"own")]
        assert gw_a.received(within_s=0.5) == [(_topic(broker, "gw-a", "down/command"), b"for a")]
    finally:
        ingest.close()
        gw_a.close()


def test_the_ingester_may_host_sparkplug_and_a_gateway_may_not(broker: Broker) -> None:
    ingest = Client(broker, INGEST_USER)
    gw_a = Client(broker, f"{PARK}/gw-a")
    try:
        assert not ingest.connected().is_failure and not gw_a.connected().is_failure
        assert not ingest.subscribe("spBv1.0/#").is_failure
        assert not gw_a.subscribe("spBv1.0/#").is_failure  # granted; deliveries are filtered
        assert not ingest.publish("spBv1.0/STATE/parkwatch", b"online").is_failure
        assert not ingest.publish("spBv1.0/plant/NCMD/node-1", b"rebirth").is_failure
        assert ingest.publish("spBv1.0/plant/NDATA/node-1", b"forged data").is_failure
        assert gw_a.publish("spBv1.0/plant/NDATA/node-1", b"not its namespace").is_failure
        assert gw_a.publish("spBv1.0/STATE/parkwatch", b"offline").is_failure
        assert ingest.received(within_s=1.0) == [
            ("spBv1.0/STATE/parkwatch", b"online"),
            ("spBv1.0/plant/NCMD/node-1", b"rebirth"),
        ]
        assert gw_a.received(within_s=0.5) == []
    finally:
        ingest.close()
        gw_a.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [(f"{PARK}/gw-a", "wrong-password"), ("", ""), (f"{PARK}/gw-unknown", "x" * 20)],
    ids=["wrong-password", "anonymous", "unregistered"],
)
def test_unknown_or_wrong_credentials_are_refused(broker: Broker, username: str, password: str) -> None:
    client = Client(broker, username, password)
    try:
        assert client.connected().is_failure
    finally:
        client.close()


def test_the_deployment_config_itself_starts_and_authenticates(
    tmp_path: Path, topic_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mosquitto accepts the whole deploy/mosquitto/mosquitto.conf (paths and port adapted)."""
    auth_dir, passwords = generate_files(tmp_path, topic_root, monkeypatch)
    server = deploy_broker(tmp_path, auth_dir)
    server.start()
    b = Broker(server=server, root=topic_root, passwords=passwords)
    try:
        # An ingester's own account (registered by broker-auth from MQTT_INGEST_ACCOUNTS) reads up/#.
        ingest = Client(b, INGESTER_1)
        gw = Client(b, f"{PARK}/gw-b")
        try:
            assert not ingest.connected().is_failure
            assert not ingest.subscribe(f"{b.root}/v1/+/+/up/#").is_failure
            assert not gw.connected().is_failure
            assert not gw.publish(_topic(b, "gw-b", "up/status"), b"{}").is_failure
            assert gw.publish(_topic(b, "gw-a", "up/status"), b"{}").is_failure
            assert ingest.payloads_until(b"{}") == [b"{}"]
        finally:
            gw.close()
            ingest.close()
        # The compose healthcheck's own command, against this broker.
        assert _healthcheck(server.port, passwords[INGEST_USER]) == 0
        assert _healthcheck(server.port, "not-the-password") != 0
    finally:
        server.stop()


def _healthcheck(port: int, password: str) -> int:
    compose = yaml.safe_load((DEPLOY_DIR.parents[1] / "docker-compose.yml").read_text())
    (kind, command) = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("-p 1883", f"-p {port}").replace("$$", "$")
    if shutil.which("mosquitto_pub") is None:
        _unavailable("mosquitto_pub is not installed (Debian package mosquitto-clients)")
    env = {**os.environ, "MQTT_INGEST_PASSWORD": password}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=20).returncode


def test_hand_made_password_file_works_with_the_generated_acl(tmp_path: Path, topic_root: str) -> None:
    """An account added with ``mosquitto_passwd -b`` (an operator's break-glass path) obeys the same ACL."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        _unavailable("mosquitto_passwd is not installed (Debian package mosquitto)")
    assert tool is not None
    auth = tmp_path / "auth"
    auth.mkdir()
    password = mosquitto.new_password()
    username = mosquitto.gateway_username(PARK, "gw-a")
    subprocess.run(
        [tool, "-c", "-b", str(auth / "passwd"), username, password], check=True, capture_output=True
    )
    (auth / "acl").write_text(mosquitto.acl_file([(PARK, "gw-a")], topic_root=topic_root))
    try:
        server = mosquitto_server(tmp_path / "broker", extra_conf=auth_lines(auth))
        server.start()
    except ServerError as exc:
        _unavailable(str(exc))
    b = Broker(server=server, root=topic_root, passwords={"gw-a": password})
    try:
        gw = Client(b, username)
        try:
            assert not gw.connected().is_failure
            assert not gw.publish(_topic(b, "gw-a", "up/telemetry"), b"own").is_failure
            assert gw.publish(_topic(b, "gw-b", "up/telemetry"), b"spoofed").is_failure
        finally:
            gw.close()
    finally:
        server.stop()
