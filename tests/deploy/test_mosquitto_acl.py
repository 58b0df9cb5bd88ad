"""The broker files generated from the gateway registry, loaded by a real Mosquitto 2.

Two gateways are registered as the API does; the deployment's ``broker-auth`` job
(``deploy/mosquitto/broker_auth.py``: the ingesters' service account, then
``parkwatch api mosquitto-files``) writes the files, loaded with the auth lines of
``deploy/mosquitto/mosquitto.conf``. A gateway may publish only under its own ``up/`` topics and
read only its own ``down/`` topics; the ingester reads every ``up/``; nobody else gets in.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from api import mosquitto
from api.registry import Registry
from tests.conftest import _unavailable
from tests.servers import ServerError, ServerProcess, find_binary, free_port, mosquitto_server, tcp_open

pytestmark = pytest.mark.integration

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
DEPLOY_CONF = DEPLOY_DIR / "mosquitto.conf"
BROKER_AUTH = DEPLOY_DIR / "broker_auth.py"
AUTH_DIR_IN_CONTAINER = "/mosquitto/auth/"
PARK = "p1"
INGEST_USER = "parkwatch-ingest"
TIMEOUT_S = 5.0


@dataclass
class Broker:
    server: ServerProcess
    root: str
    passwords: dict[str, str] = field(default_factory=dict)


# Started as root, Mosquitto drops to its own user, which cannot enter pytest's private temp
# dirs; keep root then (the option has no effect for other users). The container image solves
# the same problem by owning /mosquitto (see docs/deploy.md).
STAY_ROOT = "user root\n" if os.geteuid() == 0 else ""


def _auth_lines(auth_dir: Path) -> str:
    """The deployment's password and ACL lines, with the container path replaced by ``auth_dir``."""
    text = DEPLOY_CONF.read_text()
    assert "\nallow_anonymous false\n" in text
    lines = [ln for ln in text.splitlines() if ln.startswith(("password_file", "acl_file"))]
    assert len(lines) == 2, lines
    return STAY_ROOT + "\n".join(ln.replace(AUTH_DIR_IN_CONTAINER, f"{auth_dir}/") for ln in lines) + "\n"


def _load_broker_auth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("broker_auth", BROKER_AUTH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate_files(
    tmp_path: Path, root: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, str]]:
    """Register two gateways as the API does, then run the deployment's ``broker-auth`` job."""
    registry_path = tmp_path / "registry.sqlite"
    reg = Registry(registry_path)
    passwords: dict[str, str] = {}
    for gw in ("gw-a", "gw-b"):
        password = mosquitto.new_password()
        username = mosquitto.gateway_username(PARK, gw)
        reg.add_gateway(
            park=PARK,
            gw=gw,
            description="",
            username=username,
            password_hash=mosquitto.hash_password(password),
        )
        passwords[gw] = password
    reg.close()
    config = tmp_path / "api.toml"
    config.write_text(
        f'[api]\nregistry_path = "{registry_path}"\n'
        f'[provisioning]\ntopic_root = "{root}"\ningest_username = "{INGEST_USER}"\n'
    )
    passwords[INGEST_USER] = mosquitto.new_password()
    monkeypatch.setenv("PARKWATCH_CONFIG", str(config))
    monkeypatch.setenv("MQTT_INGEST_PASSWORD", passwords[INGEST_USER])
    out = tmp_path / "auth"
    broker_auth = _load_broker_auth()
    assert broker_auth.main(["--out-dir", str(out)]) == 0
    first = (out / "passwd").read_text()
    # Idempotent: a second run (every `docker compose up`) leaves the files unchanged.
    assert broker_auth.main(["--out-dir", str(out)]) == 0
    assert (out / "passwd").read_text() == first
    assert (out / "passwd").stat().st_mode & 0o077 == 0, "the password file must not be world-readable"
    return out, passwords


@pytest.fixture
def broker(tmp_path: Path, topic_root: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    auth_dir, passwords = _generate_files(tmp_path, topic_root, monkeypatch)
    try:
        server = mosquitto_server(tmp_path / "broker", extra_conf=_auth_lines(auth_dir))
        server.start()
    except ServerError as exc:
        _unavailable(str(exc))
    yield Broker(server=server, root=topic_root, passwords=passwords)
    server.stop()


class Client:
    """A paho MQTT v5 client on its own network thread, with received messages in a queue."""

    def __init__(self, broker: Broker, username: str, password: str | None = None) -> None:
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{username.replace('/', '-')}", protocol=mqtt.MQTTv5
        )
        self.c.username_pw_set(
            username, broker.passwords.get(username.split("/")[-1]) if password is None else password
        )
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self._puback = threading.Condition()
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.c.on_publish = self._on_publish
        self.c.connect(broker.server.host, broker.server.port, keepalive=30)
        self.c.loop_start()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: object
    ) -> None:
        with self._puback:
            self.pubacks[mid] = rc
            self._puback.notify_all()

    def connected(self) -> ReasonCode:
        return self.connack.get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str) -> ReasonCode:
        self.c.subscribe(topic, qos=1)
        (rc,) = self.subacks.get(timeout=TIMEOUT_S)
        return rc

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.c.publish(topic, payload, qos=1)
        with self._puback:
            assert self._puback.wait_for(lambda: info.mid in self.pubacks, timeout=TIMEOUT_S)
            return self.pubacks[info.mid]

    def received(self, *, within_s: float) -> list[tuple[str, bytes]]:
        out = []
        try:
            while True:
                out.append(self.messages.get(timeout=within_s))
        except queue.Empty:
            return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


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
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        _unavailable("mosquitto is not installed")
    assert binary is not None
    auth_dir, passwords = _generate_files(tmp_path, topic_root, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    text = STAY_ROOT + (
        DEPLOY_CONF.read_text()
        .replace(AUTH_DIR_IN_CONTAINER, f"{auth_dir}/")
        .replace("/mosquitto/data/", f"{data}/")
        .replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
    )
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text)
    server = ServerProcess(
        name="mosquitto",
        argv=[binary, "-c", str(conf)],
        port=port,
        workdir=tmp_path,
        ready=lambda: tcp_open("127.0.0.1", port),
    )
    server.start()
    b = Broker(server=server, root=topic_root, passwords=passwords)
    try:
        gw = Client(b, f"{PARK}/gw-b")
        try:
            assert not gw.connected().is_failure
            assert not gw.publish(_topic(b, "gw-b", "up/status"), b"{}").is_failure
            assert gw.publish(_topic(b, "gw-a", "up/status"), b"{}").is_failure
        finally:
            gw.close()
        # The compose healthcheck's own command, against this broker.
        assert _healthcheck(port, passwords[INGEST_USER]) == 0
        assert _healthcheck(port, "not-the-password") != 0
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
        server = mosquitto_server(tmp_path / "broker", extra_conf=_auth_lines(auth))
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
