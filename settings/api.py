"""Typed settings of the API (``parkwatch api``), loaded from TOML with ``PARKWATCH_*`` overrides.

The query backend is a tagged union on ``type``: ``[backend] type = "duckdb"`` (embedded
default) or ``type = "influxdb"``. See ``config/api.toml`` for a commented sample.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from contract.ids import FIELD_NAME, ID, KEY_NAME, SHA256_HEX, Id, full_match
from settings.common import LoggingSettings, Port, PositiveSeconds
from settings.ingest import OperatorName, Plmn

OptionalId = Annotated[str, msgspec.Meta(pattern=full_match(f"(?:{ID.body})?"))]
"""An id, or empty for none."""
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
H3Resolution = Annotated[int, msgspec.Meta(ge=0, le=15)]
Role = Literal["viewer", "planner", "engineer", "admin"]
SignalClass = Literal["none", "poor", "fair", "good", "excellent"]
DeadZoneMaxClass = Literal["none", "poor", "fair", "good"]
"""The widest class a user may count as dead (``excellent`` would make every cell dead)."""
LonLat = Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]


class DuckdbQuerySettings(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="duckdb"
):
    """Read the embedded DuckDB store.

    Attributes:
        path: the DuckDB file written by the ingester. DuckDB lets one process write a file;
            another process can open it read-only only while no writer holds it.
    """

    path: str = "parkwatch.duckdb"


class InfluxQuerySettings(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="influxdb"
):
    """InfluxDB through its v1-compatible ``/query`` (InfluxQL; 1.x, 2.x with DBRP, 3.x).

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:8086``.
        database: database (1.x) or DBRP-mapped bucket.
        retention_policy: retention policy to read (empty: the default).
        token: API token (2.x/3.x), sent as ``Authorization: Token ...``.
        username, password: v1 basic authentication.
        timeout_s: HTTP timeout of one query.
    """

    url: str = "http://127.0.0.1:8086"
    database: str = "parkwatch"
    retention_policy: str = ""
    token: str = ""
    username: str = ""
    password: str = ""
    timeout_s: PositiveSeconds = 10.0


BackendSettings = DuckdbQuerySettings | InfluxQuerySettings


class ParkSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A park and its boundary (for survey gaps and the share of park area measured).

    Attributes:
        id: the park id used in topics.
        name: display name.
        boundary: the outer ring as ``[[lon, lat], ...]`` (GeoJSON order), at least 3 points.
    """

    id: Id
    name: str = ""
    boundary: Annotated[list[LonLat], msgspec.Meta(min_length=3, max_length=10000)] = msgspec.field(
        default_factory=list
    )


class MachineSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where a machine belongs and its ideal cycle time (seconds per part) for OEE performance.

    ``gw`` empty: the device of that id on any gateway of the park (an entry naming the gateway
    wins). ``factory`` empty: the gateway's id. ``line`` empty: no line.
    """

    park: Id
    dev: Id
    gw: str = ""
    factory: str = ""
    line: str = ""
    ideal_cycle_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class MeterSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where an energy meter belongs (``gw``, ``factory``, ``line`` as for machines)."""

    park: Id
    dev: Id
    gw: str = ""
    factory: str = ""
    line: str = ""


class FactorySettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Factory KPIs.

    Attributes:
        machines, meters: the metadata tables.
        state_bucket_s: time resolution of machine state durations.
        max_hold_s: a state sample counts for at most this long (longer gaps are unknown time).
        demand_interval_s: bucket of the mean power whose maximum is the peak kW (900 = 15 min).
    """

    machines: list[MachineSettings] = msgspec.field(default_factory=list)
    meters: list[MeterSettings] = msgspec.field(default_factory=list)
    state_bucket_s: PositiveInt = 60
    max_hold_s: PositiveInt = 300
    demand_interval_s: PositiveInt = 900


AlarmRuleType = Literal[
    "threshold",
    "rate_of_change",
    "state",
    "gateway_offline",
    "backlog_growing",
    "loss_above",
    "uplink_rsrp_below",
    "new_dead_zone",
]
AlarmPriority = Literal["low", "medium", "high", "critical"]
OptionalFieldName = Annotated[str, msgspec.Meta(pattern=full_match(f"(?:{FIELD_NAME.body})?"))]
HourMinute = Annotated[str, msgspec.Meta(pattern=full_match(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"))]


class AlarmRule(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One alarm rule (rules are data: the config's rules seed the store, the API and CLI edit it).

    Attributes:
        id: rule id.
        type: ``threshold`` (a numeric field past ``threshold`` for ``duration_s``, cleared beyond
            ``deadband``), ``rate_of_change`` (a field changing faster than ``threshold`` units per
            minute), ``state`` (a machine reporting ``state``, e.g. ``fault``), ``gateway_offline``,
            ``backlog_growing`` (an agent's backlog rising by at least ``threshold`` through
            ``duration_s``), ``loss_above`` (a gateway's lost batches above ``threshold`` %),
            ``uplink_rsrp_below`` (a modem's RSRP at or below ``threshold`` dBm, the dead-zone
            threshold -115 by default, for ``duration_s``), ``new_dead_zone`` (a dead zone in a
            park sharing no cell with the zones known when the rule first ran).
        enabled: a disabled rule is not evaluated (its open alarms clear).
        priority: ``low``, ``medium``, ``high`` or ``critical``; empty: from ``severity``.
        severity: older spelling of the priority (``warning`` = medium, ``critical``).
        kind, field: the reading kind and numeric field (threshold and rate rules).
        op, threshold, deadband: the condition and its hysteresis (same unit as the field).
        duration_s: how long the condition must hold before the alarm is raised.
        bucket_s: time resolution of this rule (0: ``[alarms] bucket_s``); sparse data (a modem
            read every few seconds) want buckets wider than the gap between readings.
        state: the machine state of a ``state`` rule.
        park, gw, dev: optional restriction to one park / gateway / device.
        message: text of the alarm (empty: generated from the rule).
    """

    id: Id
    type: AlarmRuleType = "threshold"
    enabled: bool = True
    priority: AlarmPriority | Literal[""] = ""
    severity: Literal["warning", "critical"] = "warning"
    kind: str = ""
    field: OptionalFieldName = ""
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = 0.0
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    duration_s: Annotated[int, msgspec.Meta(ge=0)] = 60
    bucket_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 0
    state: Literal["off", "idle", "running", "fault", "setup"] = "fault"
    park: OptionalId = ""
    gw: OptionalId = ""
    dev: OptionalId = ""
    message: Annotated[str, msgspec.Meta(max_length=200)] = ""

    @property
    def effective_priority(self) -> AlarmPriority:
        if self.priority:
            return self.priority
        return "critical" if self.severity == "critical" else "medium"


class Route(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Which alarms a channel is told about (empty lists: all) and when.

    Attributes:
        parks, priorities, rules: only alarms of these parks, priorities, rule ids.
        quiet_start, quiet_end: ``HH:MM`` (UTC) window in which only ``critical`` alarms are sent
            at once; the others wait for the digest after it. Both empty: no quiet hours.
        max_per_window, window_s: at most this many messages per window; changes beyond that are
            collected and sent as one digest when the window ends.
    """

    parks: list[Id] = msgspec.field(default_factory=list)
    priorities: list[AlarmPriority] = msgspec.field(default_factory=list)
    rules: list[Id] = msgspec.field(default_factory=list)
    quiet_start: HourMinute | Literal[""] = ""
    quiet_end: HourMinute | Literal[""] = ""
    max_per_window: PositiveInt = 10
    window_s: PositiveSeconds = 600.0


class WebhookChannel(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """POST a JSON message per alarm state change, signed ``X-Parkwatch-Signature: sha256=<hex>``
    (HMAC-SHA256 of the body with ``secret``); retried with exponential backoff.

    Attributes:
        id: channel id (in the delivery log).
        url: receiver URL (http or https).
        secret: HMAC key; required.
        route: which alarms and when.
        max_attempts, backoff_s, timeout_s: retries (delays backoff_s, 2x, 4x ...) and HTTP timeout.
    """

    id: Id
    url: Annotated[str, msgspec.Meta(pattern=full_match(r"https?://[^\s]+"))]
    secret: Annotated[str, msgspec.Meta(min_length=16)]
    route: Route = msgspec.field(default_factory=Route)
    max_attempts: PositiveInt = 5
    backoff_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 10.0


class EmailChannel(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """E-mail over SMTP with STARTTLS (required unless ``starttls = false``, for a local relay).

    Attributes:
        id: channel id.
        host, port: the SMTP server (submission port 587 usually).
        starttls: upgrade with STARTTLS before logging in and sending.
        cafile: CA bundle to verify the server with (empty: the system's).
        username, password: SMTP login (empty: none).
        sender, to: envelope and header addresses.
        route: which alarms and when.
        max_attempts, backoff_s, timeout_s: retries and socket timeout.
    """

    id: Id
    host: str
    port: Port = 587
    starttls: bool = True
    cafile: str = ""
    username: str = ""
    password: str = ""
    sender: str
    to: Annotated[list[str], msgspec.Meta(min_length=1)]
    route: Route = msgspec.field(default_factory=Route)
    max_attempts: PositiveInt = 3
    backoff_s: PositiveSeconds = 2.0
    timeout_s: PositiveSeconds = 20.0


class AlarmSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Alarm rules, their evaluation and notifications.

    Attributes:
        rules: rules that seed the alarm store (a rule edited through the API keeps its edit).
        gateway_offline_after_s: seeds a ``gateway_offline`` rule (a gateway offline or silent
            this long raises an alarm).
        machine_fault_after_s: seeds a critical ``machine_fault`` rule (a machine reporting
            ``fault`` this long); 0: no such rule.
        bucket_s: time resolution of threshold evaluation.
        lookback_s: how far back the evaluator reads data.
        evaluate_interval_s: how often the API evaluates the rules; 0: never (another replica does).
        webhooks, email: notification channels.
    """

    rules: list[AlarmRule] = msgspec.field(default_factory=list)
    gateway_offline_after_s: PositiveInt = 300
    machine_fault_after_s: Annotated[int, msgspec.Meta(ge=0)] = 60
    bucket_s: PositiveInt = 10
    lookback_s: PositiveInt = 86400
    evaluate_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    webhooks: list[WebhookChannel] = msgspec.field(default_factory=list)
    email: list[EmailChannel] = msgspec.field(default_factory=list)


class CoverageSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Coverage grid defaults.

    Attributes:
        ingest_resolution: the H3 resolution the ingester stores (the finest the API serves).
        default_resolution, min_resolution: default and coarsest resolution served.
        min_samples: a cell with fewer samples is ``insufficient``.
        dead_zone_max_class: ``none``: dead means a coverage hole (RSRP at or below the profile's
            hole threshold, -115 dBm for LTE/NR); a higher class widens "dead" to the cells whose
            median is at or below that class's upper bound (``poor``: -100 dBm).
        dead_zone_confidence: a cell is dead (or covered) only at this one-sided confidence; below
            it the cell is ``uncertain`` (see docs/coverage.md).
        gnss_error_m: readings this close to an H3 cell border are left out of the test.
        reference_offsets_db: device id → known RSRP offset (dB) of calibrated receivers (a
            drive-test scanner: 0.0); each anchors the calibration of the devices that measured
            the same cells (see docs/coverage.md).
        default_window_days, max_window_days: time window defaults and cap.
        operators_by_plmn: ``"MCC-MNC"`` → operator name, to match imported cell sites (which
            carry only ``mcc`` and ``net``) to the operators of the readings; extends the public
            Vietnamese networks of :data:`storage.cell_sites.KNOWN_PLMNS`.
        site_margin_m: a park's sites are those within this distance of its boundary's box.
    """

    ingest_resolution: H3Resolution = 10
    default_resolution: H3Resolution = 10
    min_resolution: H3Resolution = 6
    min_samples: PositiveInt = 5
    dead_zone_max_class: DeadZoneMaxClass = "none"
    dead_zone_confidence: Annotated[float, msgspec.Meta(ge=0.5, lt=1.0)] = 0.9
    gnss_error_m: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 10.0
    reference_offsets_db: dict[Id, Annotated[float, msgspec.Meta(ge=-30.0, le=30.0)]] = msgspec.field(
        default_factory=dict
    )
    default_window_days: PositiveInt = 7
    max_window_days: PositiveInt = 92
    operators_by_plmn: dict[Plmn, OperatorName] = msgspec.field(default_factory=dict)
    site_margin_m: Annotated[float, msgspec.Meta(ge=0.0, le=50_000.0)] = 5000.0


class BroadbandTargetSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Broadband service targets (see :class:`analytics.signal.BroadbandTargets`)."""

    down_mbps: float = 100.0
    up_mbps: float = 20.0
    latency_p95_ms: float = 100.0
    loss_pct: float = 1.0


class ApiKeySettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """An API key declared in the config file (only its SHA-256 is stored).

    Attributes:
        name: who holds it.
        sha256: hex SHA-256 of the key (``parkwatch api key-hash`` prints it).
        role: viewer < planner < engineer < admin.
        parks: parks it may see; empty means all parks.
    """

    name: Annotated[str, msgspec.Meta(pattern=KEY_NAME.pattern)]
    sha256: Annotated[str, msgspec.Meta(pattern=SHA256_HEX.pattern)]
    role: Role = "viewer"
    parks: list[Id] = msgspec.field(default_factory=list)


class ProvisioningSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What provisioned gateways are told about the production broker.

    Attributes:
        broker_host, broker_port: where gateways connect.
        topic_root: the MQTT topic root.
        tls: gateways connect with TLS (system trust store).
        pbkdf2_iterations: iterations of Mosquitto's PBKDF2-SHA512 password hashes.
        ingest_username: the ingester's broker account (read up/#, write down/#) in the ACL;
            empty: none.
    """

    broker_host: str = "127.0.0.1"
    broker_port: Port = 1883
    topic_root: str = "parkwatch"
    tls: bool = False
    pbkdf2_iterations: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 101
    ingest_username: OptionalId = "parkwatch-ingest"


OSM_TILE_URL: Final = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION: Final = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


def tile_url_ok(url: str) -> bool:
    """Whether ``url`` is empty, ``none`` or an http(s) XYZ template with ``{z}``, ``{x}``, ``{y}``."""
    if url in ("", "none"):
        return True
    return (
        url.startswith(("https://", "http://"))
        and all(part in url for part in ("{z}", "{x}", "{y}"))
        and not any(c.isspace() or c in '"<>' for c in url)
    )


class ApiOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """HTTP server options.

    Attributes:
        host, port: listen address.
        workers: uvicorn worker processes (the API is stateless; DuckDB needs 1).
        registry_path: SQLite file of API keys and provisioned gateways (the API is its only writer).
        cache_ttl_s: how long an identical read is answered from memory (0 = off).
        cache_stale_s: after that, how long a computed result whose data changed may still be
            served while one background recomputation refreshes it (0 = wait for the new one).
        live_max_age_s: a coverage request without ``to`` (a live view: "the last L") is answered
            as of the view's latest background refresh while that is at most this old (0 = off:
            every such request is computed up to its own time).
        live_refresh_s: a live view's refresh older than this is redone in the background, one
            view at a time.
        live_keep_s: a live view nobody asked for this long is no longer refreshed.
        max_page_size: largest ``limit`` accepted.
        dashboard: serve the built-in web dashboard at ``/dashboard/`` (``/`` leads to it).
        import_max_mb: largest survey file ``POST /api/v1/imports`` accepts, in MiB.
        tile_url: the dashboard's base map, an XYZ tile URL template with ``{z}``, ``{x}`` and
            ``{y}`` (``{s}`` optional), e.g. a self-hosted tile server; the default is
            OpenStreetMap's standard tiles. Empty or ``"none"``: no tiles, the offline map (park
            boundaries, scale bar and the parks' road lines when known).
        tile_attribution: the attribution the tile provider requires (HTML allowed).
        road_lines_file: a GeoJSON file of LineStrings (e.g. the parks' internal roads, or the
            drive routes of the simulator's survey vehicles) drawn on the offline map; empty: none.
    """

    host: str = "127.0.0.1"
    port: Port = 8080
    workers: PositiveInt = 1
    registry_path: str = "parkwatch-registry.sqlite"
    cache_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    cache_stale_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    live_max_age_s: Annotated[float, msgspec.Meta(ge=0)] = 120.0
    live_refresh_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    live_keep_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    max_page_size: PositiveInt = 5000
    dashboard: bool = True
    import_max_mb: Annotated[float, msgspec.Meta(gt=0, le=1024)] = 64.0
    tile_url: str = OSM_TILE_URL
    tile_attribution: str = OSM_ATTRIBUTION
    road_lines_file: str = ""

    def __post_init__(self) -> None:
        if not tile_url_ok(self.tile_url):
            raise ValueError(
                f"api.tile_url {self.tile_url[:120]!r} is not an XYZ template: give an http(s) URL "
                'with {z}, {x} and {y} (e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png"), '
                'or "none" for the offline map'
            )


class ApiSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything ``parkwatch api`` reads from its config file."""

    api: ApiOptions = msgspec.field(default_factory=ApiOptions)
    backend: BackendSettings = msgspec.field(default_factory=DuckdbQuerySettings)
    coverage: CoverageSettings = msgspec.field(default_factory=CoverageSettings)
    broadband: BroadbandTargetSettings = msgspec.field(default_factory=BroadbandTargetSettings)
    factory: FactorySettings = msgspec.field(default_factory=FactorySettings)
    alarms: AlarmSettings = msgspec.field(default_factory=AlarmSettings)
    parks: list[ParkSettings] = msgspec.field(default_factory=list)
    keys: list[ApiKeySettings] = msgspec.field(default_factory=list)
    provisioning: ProvisioningSettings = msgspec.field(default_factory=ProvisioningSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
