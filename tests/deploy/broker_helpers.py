"""Helpers of the deploy tests: the broker files generated as the deployment does, a Mosquitto 2
started with them (with the auth lines or the whole deploy/mosquitto/mosquitto.conf), an MQTT v5
client on its own thread."""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from api import mosquitto
from api.registry import Registry
from tests.conftest import _unavailable
from tests.servers import ServerProcess, find_binary, free_port, tcp_open

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
DEPLOY_CONF = DEPLOY_DIR / "mosquitto.conf"
BROKER_AUTH = DEPLOY_DIR / "broker_auth.py"
AUTH_DIR_IN_CONTAINER = "/mosquitto/auth/"
PARK = "p1"
INGEST_USER = "parkwatch-ingest"
INGESTER_1 = "parkwatch-ingest-1"
CLIENT_ID_BINDING = "use_username_as_clientid true"
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


def auth_lines(auth_dir: Path) -> str:
    """The deployment's password, ACL and client-id lines, the container path replaced by ``auth_dir``.

    They follow the test broker's ``listener`` line, so the per-listener client-id option applies.
    """
    text = DEPLOY_CONF.read_text()
    assert "\nallow_anonymous false\n" in text
    assert f"\nlistener 1883\n{CLIENT_ID_BINDING}\n" in text, "client ids must be bound to usernames"
    lines = [ln for ln in text.splitlines() if ln.startswith(("password_file", "acl_file"))]
    assert len(lines) == 2, lines
    lines.append(CLIENT_ID_BINDING)
    return STAY_ROOT + "\n".join(ln.replace(AUTH_DIR_IN_CONTAINER, f"{auth_dir}/") for ln in lines) + "\n"


def load_broker_auth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("broker_auth", BROKER_AUTH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_files(tmp_path: Path, root: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """Register two gateways as the API does, then run the deployment's ``broker-auth`` job.

    The job registers the base ingest account and one ingester's own account (``INGESTER_1``),
    both with the ingest password. Returns the directory of the files and each account's
    password (gateways by gateway id, service accounts by username).
    """
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
    passwords[INGEST_USER] = passwords[INGESTER_1] = mosquitto.new_password()
    monkeypatch.setenv("PARKWATCH_CONFIG", str(config))
    monkeypatch.setenv("MQTT_INGEST_PASSWORD", passwords[INGEST_USER])
    monkeypatch.setenv("MQTT_INGEST_ACCOUNTS", INGESTER_1)
    out = tmp_path / "auth"
    broker_auth = load_broker_auth()
    assert broker_auth.main(["--out-dir", str(out)]) == 0
    first = (out / "passwd").read_text()
    # Idempotent: a second run (every `docker compose up`) leaves the files unchanged.
    assert broker_auth.main(["--out-dir", str(out)]) == 0
    assert (out / "passwd").read_text() == first
    assert (out / "passwd").stat().st_mode & 0o077 == 0, "the password file must not be world-readable"
    return out, passwords


def deploy_broker(tmp_path: Path, auth_dir: Path, *, drop_lines: Iterable[str] = ()) -> ServerProcess:
    """Mosquitto with the whole deploy/mosquitto/mosquitto.conf (paths and port adapted), not started.

    ``drop_lines`` removes exact lines (a control run without one of the deployment's settings).
    """
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        _unavailable("mosquitto is not installed")
    assert binary is not None
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    text = (
        DEPLOY_CONF.read_text()
        .replace(AUTH_DIR_IN_CONTAINER, f"{auth_dir}/")
        .replace("/mosquitto/data/", f"{data}/")
        .replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
    )
    dropped = set(drop_lines)
    kept = [ln for ln in text.splitlines() if ln not in dropped]
    assert len(kept) == len(text.splitlines()) - len(dropped), "a line to drop is not in the config"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(STAY_ROOT + "\n".join(kept) + "\n")
    return ServerProcess(
        name="mosquitto",
        argv=[binary, "-c", str(conf)],
        port=port,
        workdir=tmp_path,
        ready=lambda: tcp_open("127.0.0.1", port),
    )


class Client:
    """A paho MQTT v5 client on its own network thread, with received messages in a queue.

    It never reconnects by itself, so a connection the broker closes stays closed; ``events``
    records messages and disconnections in the order they happened.
    """

    def __init__(
        self,
        broker: Broker,
        username: str,
        password: str | None = None,
        *,
        client_id: str | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
    ) -> None:
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id if client_id is not None else f"t-{username.replace('/', '-')}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        self.c.username_pw_set(
            username, broker.passwords.get(username.split("/")[-1]) if password is None else password
        )
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.session_present: bool | None = None
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self._puback = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = lambda c, u, f, rc, p: self.events.put(("disconnect", rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.c.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s
        self.c.connect(
            broker.server.host, broker.server.port, keepalive=30, clean_start=clean_start, properties=props
        )
        self.c.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, rc: ReasonCode, props: object
    ) -> None:
        self.session_present = flags.session_present
        self.connack.put(rc)

    def _on_message(self, client: mqtt.Client, userdata: object, m: mqtt.MQTTMessage) -> None:
        self.messages.put((m.topic, bytes(m.payload)))
        self.events.put(("message", (m.topic, bytes(m.payload))))

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

    def payloads_until(self, last: bytes) -> list[bytes]:
        """Payloads received up to and including ``last`` (each within ``TIMEOUT_S``)."""
        out: list[bytes] = []
        while not out or out[-1] != last:
            out.append(self.messages.get(timeout=TIMEOUT_S)[1])
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
