"""OPC UA test helpers: certificates made with ``cryptography``, settings, a subprocess server."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from settings.edge_opcua import OpcuaCollector

EXAMPLE_SERVER = Path(__file__).with_name("opcua_example_server.py")


def make_certificate(directory: Path, name: str, uri: str) -> tuple[Path, Path]:
    """A self-signed OPC UA application instance certificate (DER) and its key (PEM).

    RSA 2048 with SHA-256, the application URI in subjectAltName, the key usages Part 6 asks for.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(uri),
                    x509.DNSName("localhost"),
                    x509.DNSName(socket.gethostname()),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def opcua_settings(url: str, nodes: list[dict[str, Any]], **options: Any) -> OpcuaCollector:
    """Collector settings for tests: fast publishing and a short timeout."""
    table: dict[str, Any] = {
        "url": url,
        "nodes": nodes,
        "publishing_interval_s": 0.1,
        "sampling_interval_s": 0.05,
        "timeout_s": 3.0,
        "watchdog_s": 0.5,
        **options,
    }
    return msgspec.convert(table, OpcuaCollector)


@asynccontextmanager
async def example_server(port: int, *, tick_s: float = 0.2) -> AsyncIterator[str]:
    """asyncua's ``examples/server-minimal.py`` layout in a subprocess; yields its endpoint URL.

    Ready when the process prints ``ready`` (after ``server.start()``), not after a delay.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE_SERVER),
        str(port),
        str(tick_s),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"ready"), line
        yield f"opc.tcp://127.0.0.1:{port}/freeopcua/server/"
    finally:
        proc.terminate()
        await proc.wait()
