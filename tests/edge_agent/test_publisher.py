"""The publisher alone against real Mosquitto brokers: TLS, MQTT 3.1.1 and 5, ACL refusals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contract.messages import Batch
from contract.readings import Machine
from edge_agent.doctor import check_mqtt, check_tls
from edge_agent.errors import NotConnectedError, PublishRejected
from edge_agent.publisher import Publisher
from settings.common import BrokerSettings, TlsSettings
from settings.edge import AgentOptions, EdgeSettings
from tests.conftest import _unavailable
from tests.edge_agent.helpers import Subscriber
from tests.servers import ServerError, ServerProcess, free_port, mosquitto_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def batch(seq: int) -> Batch:
    return Batch(
        v=1, gw="gw-1", seq=seq, readings=[Machine(ts=int(time.time() * 1000), dev="cnc-1", parts_total=seq)]
    )


def _root_conf() -> str:
    return "user root\n" if os.geteuid() == 0 else ""


def make_ca(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (
        tmp / f"{name}-{x}" for x in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    ext = tmp / f"{name}-ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run: Callable[..., subprocess.CompletedProcess[bytes]] = lambda *a: subprocess.run(  # noqa: E731
        a, check=True, capture_output=True
    )
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    for p in (ca, cert, key):
        p.chmod(0o644)
    return ca, cert, key


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    try:
        ca, cert, key = make_ca(tmp_path, "park")
        port = free_port()
        server = mosquitto_server(
            tmp_path / "mq",
            port=port,
            extra_conf=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n" + _root_conf(),
        )
        server.start()
    except (ServerError, OSError, subprocess.CalledProcessError) as exc:
        _unavailable(str(exc))
    yield server, ca
    server.stop()


def settings(broker: BrokerSettings) -> EdgeSettings:
    return EdgeSettings(agent=AgentOptions(park="p1", gateway="gw-1"), broker=broker)


async def test_tls_publish_and_doctor(
    tls_broker: tuple[ServerProcess, Path], topic_root: str, tmp_path: Path
) -> None:
    server, ca = tls_broker
    broker = BrokerSettings(port=server.port, topic_root=topic_root, tls=TlsSettings(ca_file=str(ca)))
    async with Publisher(broker, park="p1", gateway="gw-1") as pub:
        await pub.wait_connected(timeout_s=10)
        await pub.publish_batch(batch(0))
        assert pub.acked == 1
    assert check_tls(settings(broker)).result == "pass"
    assert [c.result for c in await asyncio.to_thread(check_mqtt, settings(broker))] == [
        "pass",
        "pass",
        "pass",
    ]
    other_ca, _, _ = make_ca(tmp_path, "other")
    untrusted = BrokerSettings(
        port=server.port, topic_root=topic_root, tls=TlsSettings(ca_file=str(other_ca))
    )
    check = check_tls(settings(untrusted))
    assert check.result == "fail" and "not trusted" in check.detail and "ca_file" in check.fix


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_both_protocols_deliver_batches_in_order(
    mosquitto: ServerProcess, topic_root: str, unique: str, protocol: str
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    await sub.wait_for(sub.subscribed.is_set, what="subscriber's SUBACK")
    broker = BrokerSettings(port=mosquitto.port, topic_root=topic_root, protocol=protocol)  # type: ignore[arg-type]
    try:
        async with Publisher(broker, park="p1", gateway="gw-1", client_id=f"pub-{unique}") as pub:
            await asyncio.gather(*(pub.publish_batch(batch(i)) for i in range(50)))
            assert pub.acked == 50
        await sub.wait_for(lambda: len(sub.batches) >= 50, what="50 batches")
        assert [seq for seq, _ in sub.batches[:50]] == list(range(50))
        # A clean close publishes the retained offline status itself.
        await sub.wait_for(
            lambda: (s := sub.last_status()) is not None and s.state == "offline", what="offline"
        )
    finally:
        sub.close()


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[ServerProcess]:
    """Mosquitto where gw-1 may write its status (and the doctor's probe topic) and read its down
    topics, but not telemetry."""
    pwfile, aclfile = tmp_path / "passwd", tmp_path / "acl"
    try:
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(pwfile), "gw-1", "pw-1"], check=True, capture_output=True
        )
        pwfile.chmod(0o644)
        aclfile.write_text(
            "user gw-1\ntopic write +/+/v1/p1/gw-1/up/status\ntopic write +/+/v1/p1/gw-1/up/doctor\n"
            "topic read +/+/v1/p1/gw-1/down/#\n"
        )
        aclfile.chmod(0o644)
        server = mosquitto_server(
            tmp_path / "mq", extra_conf=f"password_file {pwfile}\nacl_file {aclfile}\n" + _root_conf()
        )
        server.start()
    except (ServerError, OSError, subprocess.CalledProcessError) as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


async def test_mqtt5_acl_refusal_is_reported(acl_broker: ServerProcess, topic_root: str) -> None:
    broker = BrokerSettings(port=acl_broker.port, topic_root=topic_root, username="gw-1", password="pw-1")
    async with Publisher(broker, park="p1", gateway="gw-1") as pub:
        await pub.wait_connected(timeout_s=10)
        with pytest.raises(PublishRejected) as exc:
            await pub.publish_batch(batch(0))
        assert exc.value.reason_code == 0x87
    checks = await asyncio.to_thread(check_mqtt, settings(broker))
    assert [c.result for c in checks] == ["pass", "pass", "pass"]  # probe write and down read are allowed
    denied = BrokerSettings(port=acl_broker.port, topic_root=topic_root, username="gw-1", password="pw-1")
    other = EdgeSettings(agent=AgentOptions(park="p1", gateway="gw-2"), broker=denied)
    checks = await asyncio.to_thread(check_mqtt, other)
    by_name = {c.name: c for c in checks}
    assert by_name["acl publish"].result == "fail" and "refused" in by_name["acl publish"].detail
    # Mosquitto grants any subscription and filters deliveries by ACL, so SUBACK cannot tell.


async def test_close_releases_publishes_waiting_for_an_unreachable_broker() -> None:
    failed = asyncio.Event()

    def backoff(attempt: int) -> float:
        failed.set()  # called after a failed connect attempt
        return 0.05

    pub = Publisher(BrokerSettings(port=free_port()), park="p1", gateway="gw-1", backoff=backoff)
    await pub.start()
    waiting = asyncio.create_task(pub.publish_batch(batch(0)))
    async with asyncio.timeout(10):
        await failed.wait()
    assert not waiting.done() and not pub.connected and "cannot connect" in pub.last_error
    await pub.aclose()
    with pytest.raises(NotConnectedError):
        await waiting
    with pytest.raises(NotConnectedError):
        await pub.wait_connected(timeout_s=1)
