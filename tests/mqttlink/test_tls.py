"""TLS towards a real Mosquitto: certificate and host name verified by default, both skipped only
by ``insecure_skip_verify``, the same for the edge publisher, the ingester's consumer and the doctor.

The broker has two TLS listeners with certificates from one test CA: one for 127.0.0.1/localhost
(the right host name) and one for ``wrong.example`` only. A second CA that signed nothing here
plays the untrusted one.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract.messages import Batch
from edge_agent.doctor import check_mqtt, check_tls
from edge_agent.publisher import Publisher
from ingest.mqtt import Message, MqttConsumer
from settings.common import BrokerSettings, TlsSettings
from settings.edge import AgentOptions, EdgeSettings
from tests.conftest import _unavailable
from tests.servers import ServerError, ServerProcess, free_port, mosquitto_server, tcp_open

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path


def make_ca(tmp: Path, name: str) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} test CA"))
        .issuer_name(_name(f"{name} test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp / f"{name}-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)
    return Ca(key, cert, path)


def server_cert(tmp: Path, ca: Ca, name: str, sans: list[x509.GeneralName]) -> tuple[Path, Path]:
    """A server certificate signed by ``ca`` for ``sans``: (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    for p in (cert_path, key_path):
        p.chmod(0o644)
    return cert_path, key_path


@dataclass(frozen=True)
class TlsBroker:
    right_port: int
    """Certificate for 127.0.0.1 and localhost."""
    wrong_port: int
    """Certificate for wrong.example only."""
    ca: Path
    other_ca: Path
    """A CA that signed neither certificate."""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    tmp = tmp_path_factory.mktemp("tls")
    ca, other = make_ca(tmp, "park"), make_ca(tmp, "other")
    right = server_cert(
        tmp, ca, "right", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    wrong = server_cert(tmp, ca, "wrong", [x509.DNSName("wrong.example")])
    right_port, wrong_port = free_port(), free_port()
    try:
        server: ServerProcess = mosquitto_server(
            tmp / "mq",
            port=right_port,
            extra_conf=(
                f"cafile {ca.path}\ncertfile {right[0]}\nkeyfile {right[1]}\n"
                f"listener {wrong_port} 127.0.0.1\ncafile {ca.path}\ncertfile {wrong[0]}\nkeyfile {wrong[1]}\n"
            ),
        )
        server.start()
    except (ServerError, OSError) as exc:
        _unavailable(str(exc))
    assert tcp_open("127.0.0.1", wrong_port, timeout=5)
    yield TlsBroker(right_port, wrong_port, ca.path, other.path)
    server.stop()


CASES = {
    # id: (port attribute, trusted CA?, insecure_skip_verify, connects?)
    "right-host": ("right_port", True, False, True),
    "wrong-host": ("wrong_port", True, False, False),
    "wrong-host-skip-verify": ("wrong_port", True, True, True),
    "untrusted-ca": ("right_port", False, False, False),
    "untrusted-ca-skip-verify": ("right_port", False, True, True),
}


def broker_for(tls: TlsBroker, case: str, topic_root: str) -> tuple[BrokerSettings, bool]:
    port_attr, trusted, skip, connects = CASES[case]
    settings = BrokerSettings(
        port=getattr(tls, port_attr),
        topic_root=topic_root,
        tls=TlsSettings(ca_file=str(tls.ca if trusted else tls.other_ca), insecure_skip_verify=skip),
    )
    return settings, connects


class FailedAttempt:
    """An injected backoff that records the first failed connect attempt as an event."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __call__(self, attempt: int) -> float:
        self.event.set()
        return 0.05


async def _first(*events: asyncio.Event, timeout_s: float = 20) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


@pytest.mark.parametrize("case", list(CASES))
async def test_edge_publisher(tls_broker: TlsBroker, topic_root: str, case: str) -> None:
    broker, connects = broker_for(tls_broker, case, topic_root)
    failed = FailedAttempt()
    pub = Publisher(broker, park="p1", gateway="gw-1", backoff=failed)
    await pub.start()
    try:
        await _first(pub.link.connected, failed.event)
        if connects:
            await pub.publish_batch(Batch(v=1, gw="gw-1", seq=0, readings=[]))
            assert pub.acked == 1 and pub.last_error == ""
        else:
            assert not pub.connected and pub.connects == 0
            assert "certificate verify failed" in pub.last_error
            assert "ca_file" in pub.last_error and "insecure_skip_verify" in pub.last_error
    finally:
        await pub.aclose()


@pytest.mark.parametrize("case", list(CASES))
async def test_ingest_consumer(tls_broker: TlsBroker, topic_root: str, unique: str, case: str) -> None:
    broker, connects = broker_for(tls_broker, case, topic_root)
    failed = FailedAttempt()
    got: list[Message] = []
    consumer = MqttConsumer(
        broker=broker,
        client_id=f"ing-{unique}",
        filters=[f"{topic_root}/#"],
        max_unacked=10,
        deliver=got.extend,
        delay=failed,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await _first(consumer.subscribed, failed.event)
        if connects:
            assert consumer.subscribed.is_set() and consumer.connects == 1
        else:
            assert consumer.connects == 0 and not consumer.connected.is_set()
            assert "certificate verify failed" in consumer.link.last_error
    finally:
        await consumer.disconnect()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("case", list(CASES))
async def test_edge_doctor(tls_broker: TlsBroker, topic_root: str, case: str) -> None:
    broker, connects = broker_for(tls_broker, case, topic_root)
    settings = EdgeSettings(agent=AgentOptions(park="p1", gateway="gw-1"), broker=broker)
    tls = await asyncio.to_thread(check_tls, settings)
    mqtt_checks = await asyncio.to_thread(check_mqtt, settings)
    results = [c.result for c in mqtt_checks]
    skip = CASES[case][2]
    if not connects:
        assert tls.result == "fail" and "not trusted" in tls.detail and "ca_file" in tls.fix
        assert results == ["skip"]
    elif skip:
        assert tls.result == "warn" and "NOT verified" in tls.detail
        assert results == ["pass", "pass", "pass"]
    else:
        assert tls.result == "pass" and "certificate accepted" in tls.detail
        assert results == ["pass", "pass", "pass"]
