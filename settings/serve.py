"""Typed settings of ``parkwatch serve``: ingester, API and dashboard in one process, on DuckDB.

The file holds the ingester's tables (``[broker]``, ``[ingest]``), the API's tables (``[api]``,
``[coverage]``, ``[factory]``, ...), the one DuckDB store both use (``[store]``) and the
optional embedded broker (``[embedded_broker]``). See ``config/parkwatch.toml`` for a
commented sample. :meth:`ServeSettings.ingest_settings` and :meth:`ServeSettings.api_settings`
give each part the settings it would read from its own file.
"""

from __future__ import annotations

from typing import Final

import msgspec

from settings.api import (
    AlarmSettings,
    ApiKeySettings,
    ApiOptions,
    ApiSettings,
    BroadbandTargetSettings,
    CoverageSettings,
    DuckdbQuerySettings,
    FactorySettings,
    ParkSettings,
    ProvisioningSettings,
)
from settings.common import BrokerSettings, LoggingSettings, Port
from settings.ingest import DuckdbSinkSettings, IngestOptions, IngestSettings, SparkplugSettings

EMBEDDED_MAX_UNACKED: Final = 500
"""The ingester's ``max_unacked`` with the embedded broker (see :meth:`ServeSettings.ingest_settings`)."""


class EmbeddedBrokerSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The in-process MQTT 3.1.1 broker (amqtt) for a small park.

    It accepts anonymous clients: keep it on loopback or a closed network. A park whose
    gateways need their own accounts and ACLs uses Mosquitto instead (``enabled = false`` and
    ``[broker]`` pointing at it).

    Attributes:
        enabled: run the embedded broker in this process; the ingester then connects to it
            (``[broker]`` host, port, protocol, TLS and credentials are ignored).
        host, port: where it listens.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 1883


class ServeSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything ``parkwatch serve`` reads from its config file."""

    store: DuckdbSinkSettings = msgspec.field(default_factory=DuckdbSinkSettings)
    embedded_broker: EmbeddedBrokerSettings = msgspec.field(default_factory=EmbeddedBrokerSettings)
    broker: BrokerSettings = msgspec.field(default_factory=BrokerSettings)
    ingest: IngestOptions = msgspec.field(default_factory=IngestOptions)
    sparkplug: SparkplugSettings = msgspec.field(default_factory=SparkplugSettings)
    api: ApiOptions = msgspec.field(default_factory=ApiOptions)
    coverage: CoverageSettings = msgspec.field(default_factory=CoverageSettings)
    broadband: BroadbandTargetSettings = msgspec.field(default_factory=BroadbandTargetSettings)
    factory: FactorySettings = msgspec.field(default_factory=FactorySettings)
    alarms: AlarmSettings = msgspec.field(default_factory=AlarmSettings)
    parks: list[ParkSettings] = msgspec.field(default_factory=list)
    keys: list[ApiKeySettings] = msgspec.field(default_factory=list)
    provisioning: ProvisioningSettings = msgspec.field(default_factory=ProvisioningSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)

    def ingest_settings(self) -> IngestSettings:
        """The ingester's part: ``[broker]`` (or the embedded broker), ``[ingest]``, ``[sparkplug]``,
        the store."""
        broker, ingest = self.broker, self.ingest
        if not ingest.registry_path:
            # One process, one registry: parks, gateway sites and uploaded surveys come from the
            # API's registry file unless [ingest] names another.
            ingest = msgspec.structs.replace(ingest, registry_path=self.api.registry_path)
        if self.embedded_broker.enabled:
            # amqtt drops a QoS 1 delivery that is not acknowledged within 5 s (gap repair then
            # has the gateway resend it); the ingester acknowledges after the write, so it keeps
            # few messages outstanding with this broker to keep its acks quick.
            ingest = msgspec.structs.replace(
                ingest, max_unacked=min(ingest.max_unacked, EMBEDDED_MAX_UNACKED)
            )
            host = self.embedded_broker.host
            broker = msgspec.structs.replace(
                broker,
                host="127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host,
                port=self.embedded_broker.port,
                protocol="3.1.1",
                tls=None,
                username="",  # the embedded broker lets anyone in
                password="",
            )
        return IngestSettings(
            broker=broker, sink=self.store, ingest=ingest, sparkplug=self.sparkplug, logging=self.logging
        )

    def api_settings(self) -> ApiSettings:
        """The API's part: every API table, reading the same store."""
        return ApiSettings(
            api=self.api,
            backend=DuckdbQuerySettings(path=self.store.path),
            coverage=self.coverage,
            broadband=self.broadband,
            factory=self.factory,
            alarms=self.alarms,
            parks=self.parks,
            keys=self.keys,
            provisioning=self.provisioning,
            logging=self.logging,
        )
