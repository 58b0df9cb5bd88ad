"""The one MQTT adapter of parkwatch: paho-mqtt on the asyncio event loop (see :mod:`mqttlink.link`).

Base-installed (it needs only paho-mqtt and msgspec), so the edge agent, the ingester and the
edge doctor all use it: client construction, TLS, the connect/reconnect loop and its backoff live
here once.
"""

from mqttlink.link import (
    LOGIN_REFUSED,
    Backoff,
    MqttLink,
    Publish,
    connect_properties,
    jittered_backoff,
    make_client,
    open_connection,
    refusal_hint,
    tls_context,
)

__all__ = [
    "LOGIN_REFUSED",
    "Backoff",
    "MqttLink",
    "Publish",
    "connect_properties",
    "jittered_backoff",
    "make_client",
    "open_connection",
    "refusal_hint",
    "tls_context",
]
