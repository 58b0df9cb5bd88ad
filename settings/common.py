"""Settings shared by several deployables: the MQTT broker connection and logging."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]


class TlsSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """TLS towards the broker. ``ca_file`` empty means the system trust store."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


class BrokerSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where and how to reach the MQTT broker."""

    host: str = "127.0.0.1"
    port: Port = 1883
    username: str = ""
    password: str = ""
    client_id: str = ""
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30
    topic_root: str = "parkwatch"
    tls: TlsSettings | None = None
    reconnect_min_s: PositiveSeconds = 0.5
    reconnect_max_s: PositiveSeconds = 30.0


class LoggingSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Log level and format (``json`` for structured logs, ``text`` for people)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
