"""The asyncua client side shared by the OPC UA collector, ``edge doctor`` and ``edge init``.

Opening a connection with the configured security and user, closing it whatever state it is in,
resolving a node map, turning a DataValue into a :class:`~edge_agent.collectors.opcua_values.Sample`,
and one-line reasons from asyncua's exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Final, Protocol

from settings.errors import ConfigError

try:
    from asyncua import ua
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "an [[collectors]] table has type opcua but asyncua is not installed: "
        "pip install -c constraints.txt 'parkwatch[edge,opcua]'"
    ) from exc
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509

from edge_agent.collectors.opcua_values import Sample, to_epoch_ms
from edge_agent.errors import DeviceError
from settings.edge_opcua import OpcuaNode

DEFAULT_APPLICATION_URI: Final = "urn:parkwatch:edge"
CLIENT_ERRORS: Final = (OSError, TimeoutError, UaError, ValueError)
"""What asyncua and the certificate loaders raise on a failed connection, request or file."""
_MODES: Final = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}


class Connection(Protocol):
    """The connection settings of :class:`~settings.edge_opcua.OpcuaCollector` (also used by
    ``edge init``, which has no node map yet)."""

    @property
    def url(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def security_policy(self) -> str: ...
    @property
    def security_mode(self) -> str: ...
    @property
    def certificate(self) -> str: ...
    @property
    def private_key(self) -> str: ...
    @property
    def private_key_password(self) -> str: ...
    @property
    def server_certificate(self) -> str: ...
    @property
    def application_uri(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def watchdog_s(self) -> float: ...


class _PublishLossAsWarning(logging.Filter):
    """asyncua's publish loop logs a closed connection as an ERROR with a traceback, once per
    second until the session is torn down. The collector reports the loss itself (a counted
    device error, then a reconnect), so that record is held at WARNING, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(exc, ConnectionError | OSError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg} ({describe(exc)})"
            record.exc_info = record.exc_text = None
        return True


_PUBLISH_FILTER: Final = _PublishLossAsWarning()


def quiet_publish_loss() -> None:
    """Install the :class:`_PublishLossAsWarning` filter on asyncua's session logger (once)."""
    session_log = logging.getLogger("asyncua.client.ua_session.UaSession")
    if _PUBLISH_FILTER not in session_log.filters:
        session_log.addFilter(_PUBLISH_FILTER)


def certificate_uri(path: str) -> str | None:
    """The URI in a certificate's subjectAltName (DER or PEM file), None when it has none.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a certificate.
    """
    data = Path(path).read_bytes()
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def describe(exc: BaseException) -> str:
    """A one-line reason from an asyncua or socket exception."""
    if isinstance(exc, UaStatusCodeError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return "no answer (timeout)"
    return str(exc) or type(exc).__name__


async def open_client(cfg: Connection) -> Client:
    """A connected asyncua client with the collector's security and user settings.

    Raises:
        DeviceError: the server cannot be reached, refuses the security or the user.
    """
    client = Client(cfg.url, timeout=cfg.timeout_s, watchdog_intervall=cfg.watchdog_s, auto_reconnect=False)
    client.name = client.description = "parkwatch edge agent"
    client.session_timeout = 600_000  # what most servers grant at most (asyncua warns on a revision)
    try:
        uri = cfg.application_uri or (certificate_uri(cfg.certificate) if cfg.certificate else None)
        client.application_uri = uri or DEFAULT_APPLICATION_URI
        if cfg.username:
            client.set_user(cfg.username)
            client.set_password(cfg.password)
        async with asyncio.timeout(cfg.timeout_s * 3):
            if cfg.security_policy == "Basic256Sha256":
                await client.set_security(
                    SecurityPolicyBasic256Sha256,
                    certificate=cfg.certificate,
                    private_key=cfg.private_key,
                    private_key_password=cfg.private_key_password or None,
                    server_certificate=cfg.server_certificate or None,
                    mode=_MODES[cfg.security_mode],
                )
            await client.connect()
    except CLIENT_ERRORS as exc:
        await close_client(client, healthy=False)
        raise DeviceError(
            f"{cfg.name}: cannot open {cfg.url} ({security_text(cfg)}): {describe(exc)}"
        ) from exc
    return client


def security_text(cfg: Connection) -> str:
    user = f", user {cfg.username}" if cfg.username else ", anonymous"
    if cfg.security_policy == "None":
        return f"no security{user}"
    return f"{cfg.security_policy} {cfg.security_mode}{user}"


async def close_client(client: Client, *, healthy: bool, timeout_s: float = 2.0) -> None:
    """Close the session, channel and socket; never raises (the server may be gone)."""
    with contextlib.suppress(*CLIENT_ERRORS, ConnectionError):
        async with asyncio.timeout(timeout_s):
            await client.close_session()
    if healthy:
        with contextlib.suppress(*CLIENT_ERRORS, ConnectionError):
            async with asyncio.timeout(timeout_s):
                await client.close_secure_channel()
    client.disconnect_socket()


async def resolve_nodes(client: Client, nodes: list[OpcuaNode]) -> list[Node | str]:
    """Each map entry's node, or the reason it cannot be found (browse paths are translated)."""
    out: list[Node | str] = []
    objects = client.nodes.objects
    for n in nodes:
        if n.node_id:
            try:
                out.append(client.get_node(ua.NodeId.from_string(n.node_id)))
            except (ValueError, UaError) as exc:
                out.append(f"node_id {n.node_id!r}: {describe(exc)}")
            continue
        path = [s if ":" in s else f"0:{s}" for s in n.browse_path.strip("/").split("/")]
        if path and path[0] == "0:Objects":
            path = path[1:]
        try:
            out.append(await objects.get_child(path))
        except UaStatusCodeError as exc:
            out.append(f"browse_path {n.browse_path!r}: {describe(exc)}")
    return out


def sample_of(index: int, dv: ua.DataValue) -> Sample:
    """A :class:`Sample` from an asyncua DataValue."""
    status = dv.StatusCode if dv.StatusCode is not None else ua.StatusCode(ua.UInt32(StatusCodes.Good))
    value = dv.Value.Value if dv.Value is not None else None
    return Sample(
        node=index,
        value=value,
        good=status.is_good(),
        source_ms=to_epoch_ms(dv.SourceTimestamp),
        server_ms=to_epoch_ms(dv.ServerTimestamp),
        status=status.name,
    )
