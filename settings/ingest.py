"""Typed settings of the ingester (``parkwatch ingest``), loaded from TOML with ``PARKWATCH_*`` overrides.

The sink is a tagged union on ``type``: ``[sink] type = "duckdb"`` (embedded default) or
``type = "influxdb"``. See ``config/ingest.toml`` for a commented sample.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from settings.common import BrokerSettings, LoggingSettings, PositiveSeconds

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
H3Resolution = Annotated[int, msgspec.Meta(ge=0, le=15)]
OperatorName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Plmn = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{3}-[0-9]{2,3}\Z")]


class InfluxSinkSettings(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="influxdb"
):
    """InfluxDB through its v1-compatible HTTP API (1.x, 2.x with a token, 3.x).

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:8086``.
        database: database (1.x) or DBRP-mapped bucket (2.x/3.x).
        retention_policy: name of the retention policy to write into; created on 1.x when
            ``create_database`` is true. Empty: the database default.
        retention_days: duration of that retention policy (0 = keep forever).
        create_database: send ``CREATE DATABASE`` (and the retention policy) at start-up (1.x only).
        token: API token (2.x/3.x), sent as ``Authorization: Token ...``.
        username, password: v1 basic authentication.
        gzip: compress write bodies: ``true`` (the default), ``false``, or ``"auto"``: off when
            ``url`` names a loopback host (``localhost``, 127.0.0.0/8, ``::1``), on otherwise.
            On loopback ``"auto"`` saves about 2 us of CPU per reading, but at full rate it raised
            the ingester's peak memory by about 70 MB (docs/ingest.md), so it is not the default.
        max_lines_per_write: points per HTTP request; a 413 answer splits the request.
        timeout_s: HTTP timeout of one request.
    """

    url: str = "http://127.0.0.1:8086"
    database: str = "parkwatch"
    retention_policy: str = ""
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 0
    create_database: bool = True
    token: str = ""
    username: str = ""
    password: str = ""
    gzip: bool | Literal["auto"] = True
    max_lines_per_write: PositiveInt = 10000
    timeout_s: PositiveSeconds = 10.0


class DuckdbSinkSettings(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="duckdb"
):
    """The embedded DuckDB store: one file, written by one ingester process.

    Attributes:
        path: the DuckDB database file (created with its tables when missing).
        retention_days: rows older than this are deleted periodically (0 = keep forever).
        retention_interval_s: how often the retention delete runs.
        threads: DuckDB worker threads (0 = DuckDB's default, one per core).
        memory_limit_mb: DuckDB's buffer memory (it spills to disk beyond); keeps the
            ingester's footprint bounded (DuckDB's own default is 80% of the RAM).
    """

    path: str = "parkwatch.duckdb"
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 90
    retention_interval_s: PositiveSeconds = 3600.0
    threads: Annotated[int, msgspec.Meta(ge=0)] = 0
    memory_limit_mb: Annotated[int, msgspec.Meta(ge=16)] = 64


SinkSettings = InfluxSinkSettings | DuckdbSinkSettings


class GatewayPosition(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A fixed gateway position, used for the H3 cell of readings without their own coordinates."""

    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]


class IngestOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How the ingester consumes, batches and spools.

    Attributes:
        client_id: fixed MQTT client id (the persistent session lives under it). Empty: taken
            from ``[broker] client_id``, else ``[broker] username`` (the id a broker that ties
            client ids to usernames gives it anyway), else ``parkwatch-ingest``.
        share_group: MQTT v5 shared subscription group; empty subscribes normally.
        park: subscribe to one park only (``+`` = every park).
        max_unacked: messages received but not yet acknowledged (backpressure bound; MQTT v5
            Receive Maximum). High, so that one-reading messages flow as freely as big ones.
        max_unacked_mb: payload megabytes received but not yet acknowledged (the memory bound
            for big messages; 16 MB keeps a 1,000,000-reading burst under 200 MB RSS and still
            fills four writers of 10,000 readings); intake pauses at whichever bound comes
            first, and a batch is written as soon as intake pauses.
        batch_readings: flush a write batch when it holds this many readings.
        flush_interval_s: flush a non-empty batch once its first message is this old and a
            writer is free; while every writer is busy the batch keeps filling (up to
            ``batch_readings`` or a flow-control bound), so batches grow with the load.
        write_concurrency: sink writes in flight at once; 0 picks 4 for InfluxDB (it takes
            concurrent writes faster) and 1 for DuckDB (one writer; more only holds memory).
        h3_resolution: H3 resolution of the ``h3`` column/tag.
        spool_dir: disk spool for batches the sink cannot take now (replayed in order).
        spool_max_mb: spool size cap; when full, intake pauses (nothing is dropped).
        retry_min_s, retry_max_s: capped, jittered backoff of sink retries.
        shutdown_grace_s: how long SIGTERM waits for in-flight batches to be written.
        metrics_enabled: serve ``/metrics`` and ``/healthz`` (false: no endpoint).
        metrics_host, metrics_port: where they listen; port 0 picks any free port (logged, and
            written to ``metrics_port_file``), so several ingesters share one host unedited.
        metrics_port_file: file the listening port is written to once bound (empty: none);
            removed again on a clean stop.
        gateway_positions: gateway id → fixed position.
        confirm: publish ``down/confirm`` messages naming the batches durably stored, so that
            gateways can forget them and resend the ones lost on the way (gap repair).
        confirm_interval_s: at most one confirm per gateway this often (more only when one
            would exceed the contract's 1000 ranges).
        max_age_days: oldest reading accepted from live MQTT, in days (0 = any age).
        import_max_age_days: oldest reading accepted by ``parkwatch import`` (0 = any age: a
            survey of last quarter is backfilled; the store's retention still deletes what is
            older than it keeps).
        operator_aliases: operator spelling → the name to store (``"Lotus" = "Lotus Mobile"``).
        operators_by_plmn: ``"MCC-MNC"`` (e.g. ``"452-04"``) → operator name, applied to cellular
            readings that carry ``mcc`` and ``mnc``; it wins over the reported name.
        dead_letter_summary_s: at most one WARNING summing up dead letters by reason this often
            (0 disables it).
        registry_path: the API's registry file (SQLite); parks and gateway positions stored
            there (``parkwatch park``, ``PUT /api/v1/parks/...``) are read from it, live. Empty:
            none, only ``gateway_positions``.
        registry_refresh_s: how often the registry is read again.
        import_poll_s: how often the registry is asked for survey files uploaded through the API
            (``POST /api/v1/imports``); 0 leaves them to other ingesters.
        refuse_unknown: ``none`` accepts every park and gateway; ``parks`` dead-letters messages
            of parks the registry does not hold; ``gateways`` also those of gateways it does not
            hold under that park.
    """

    client_id: str = ""
    share_group: str = ""
    park: str = "+"
    max_unacked: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 20000
    max_unacked_mb: Annotated[float, msgspec.Meta(gt=0, le=4096)] = 16.0
    batch_readings: PositiveInt = 10000
    flush_interval_s: PositiveSeconds = 0.2
    write_concurrency: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    h3_resolution: H3Resolution = 10
    spool_dir: str = "ingest-spool"
    spool_max_mb: Annotated[float, msgspec.Meta(gt=0)] = 1024.0
    retry_min_s: PositiveSeconds = 0.2
    retry_max_s: PositiveSeconds = 10.0
    shutdown_grace_s: PositiveSeconds = 15.0
    metrics_host: str = "127.0.0.1"
    metrics_enabled: bool = True
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    metrics_port_file: str = ""
    gateway_positions: dict[str, GatewayPosition] = msgspec.field(default_factory=dict)
    confirm: bool = True
    confirm_interval_s: PositiveSeconds = 1.0
    max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    import_max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    operator_aliases: dict[OperatorName, OperatorName] = msgspec.field(default_factory=dict)
    operators_by_plmn: dict[Plmn, OperatorName] = msgspec.field(default_factory=dict)
    dead_letter_summary_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    registry_path: str = ""
    registry_refresh_s: PositiveSeconds = 10.0
    refuse_unknown: Literal["none", "parks", "gateways"] = "none"
    import_poll_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 2.0


MetricKind = Literal["cellular", "wifi", "broadband", "machine", "energy", "environment", "system"]
SparkplugId = Annotated[str, msgspec.Meta(pattern=r"^[^/+#\s]{1,128}\Z")]
"""A Sparkplug group, edge node or device id: no ``/ + #`` or white space (topic segments)."""
SparkplugIdOrAll = Annotated[str, msgspec.Meta(pattern=r"^(?:\+|[^/+#\s]{1,128})\Z")]
"""A Sparkplug id, or ``+`` for every one."""


class MetricMap(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How one Sparkplug metric becomes a field of a contract reading.

    The stored value is ``value * scale + offset`` (numbers only).

    Attributes:
        name: the metric name exactly as in the birth certificate (``Motor/Temperature``).
        device: the Sparkplug device the rule applies to; empty: every device and the node.
        kind: the contract reading kind the value goes to.
        field: the field of that kind (e.g. ``motor_temp_c``).
        scale, offset: linear conversion into the field's unit.
        unit: the unit the scale and offset were written for: when the birth certificate
            declares another ``engUnit`` property (compared case-insensitively), the rule does
            not apply and the metric is stored as a generic value (never mis-scaled). Empty,
            or no ``engUnit`` in the birth: not checked.
        values: value translation before storing, keyed by the metric's value as text
            (``{"0" = "off", "1" = "idle", "2" = "running"}`` for a PLC's state code); a value
            not listed is stored as it is (and the contract's checks apply to it).
    """

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    kind: MetricKind
    field: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z")]
    device: str = ""
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    values: dict[str, str | float | bool] = msgspec.field(default_factory=dict)


class SparkplugNode(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Which park and gateway one Sparkplug edge node is, and how its metrics map.

    Attributes:
        group: the Sparkplug group id.
        edge_node: the edge node id; ``+`` maps every node of the group not mapped by name
            (its gateway id is then the edge node id, which must be a valid parkwatch id).
        park: the park the node's readings belong to.
        gateway: the gateway id to store the node under (empty: the edge node id).
        metrics: metric rules; metrics without one are stored as ``generic`` readings.
    """

    group: SparkplugId
    edge_node: SparkplugIdOrAll
    park: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")]
    gateway: Annotated[str, msgspec.Meta(pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63})?\Z")] = ""
    metrics: list[MetricMap] = msgspec.field(default_factory=list)


class SparkplugSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Sparkplug B (specification 3.0) intake: ``spBv1.0/{group}/...`` next to the contract.

    Attributes:
        enabled: subscribe to Sparkplug topics and publish this host's ``STATE``.
        groups: group ids to subscribe to (``spBv1.0/{group}/#`` each); ``["+"]``: every group.
        host_id: the Sparkplug host application id: ``spBv1.0/STATE/{host_id}`` carries this
            ingester's online state (retained, with a Last Will). Empty: the MQTT client id.
        rebirth_interval_s: at most one rebirth request (NCMD ``Node Control/Rebirth``) per
            edge node this often.
        nodes: the mapping of edge nodes to parks and gateways (see ``config/sparkplug.toml``).
    """

    enabled: bool = False
    groups: list[SparkplugIdOrAll] = msgspec.field(default_factory=lambda: ["+"])
    host_id: Annotated[str, msgspec.Meta(pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63})?\Z")] = ""
    rebirth_interval_s: PositiveSeconds = 5.0
    nodes: list[SparkplugNode] = msgspec.field(default_factory=list)


class IngestSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything ``parkwatch ingest`` needs."""

    broker: BrokerSettings = msgspec.field(default_factory=BrokerSettings)
    sink: SinkSettings = msgspec.field(default_factory=DuckdbSinkSettings)
    ingest: IngestOptions = msgspec.field(default_factory=IngestOptions)
    sparkplug: SparkplugSettings = msgspec.field(default_factory=SparkplugSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)

    @property
    def client_id(self) -> str:
        return self.ingest.client_id or self.broker.client_id or self.broker.username or "parkwatch-ingest"


SinkType = Literal["influxdb", "duckdb"]
