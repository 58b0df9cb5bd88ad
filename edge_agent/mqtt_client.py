"""paho-mqtt client set-up shared by the publisher and the doctor: protocol, credentials, TLS."""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from settings.common import BrokerSettings


def make_client(
    broker: BrokerSettings,
    *,
    client_id: str,
    clean: bool = False,
) -> mqtt.Client:
    """A paho client configured from ``broker``: protocol, credentials, TLS, persistent session."""
    v5 = broker.protocol == "5"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else clean,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password or None)
    if broker.tls is not None:
        tls = broker.tls
        client.tls_set(
            ca_certs=tls.ca_file or None,
            certfile=tls.cert_file or None,
            keyfile=tls.key_file or None,
            cert_reqs=ssl.CERT_NONE if tls.insecure_skip_verify else ssl.CERT_REQUIRED,
        )
        if tls.insecure_skip_verify:
            client.tls_insecure_set(True)
    return client


def connect_properties(broker: BrokerSettings, session_expiry_s: int) -> Properties | None:
    """MQTT 5 CONNECT properties (session expiry); None for 3.1.1."""
    if broker.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    return props


def tcp_reachable(host: str, port: int, timeout_s: float = 3.0) -> str | None:
    """None when a TCP connection to ``host:port`` opens, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__
