"""The answers of the read routes as msgspec structs: one definition for speed and for the docs.

The services return these structs; :func:`api.deps.json_response` encodes them with msgspec
(NaN becomes null), and :func:`ok` files their JSON Schema (from ``msgspec.json.schema_components``)
as the route's documented 200 answer, so the OpenAPI document describes every answer without a
second, pydantic copy of each shape. A field that an answer may leave out is ``UNSET``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

# -- coverage -------------------------------------------------------------------------------------


class SummaryChange(Struct, kw_only=True):
    """``current - previous`` of the headline figures, against the window just before."""

    measured_area_m2: float
    dead_zones: int
    dead_zone_area_m2: float
    area_share_by_class: dict[str, float]


class CoverageSummaryItem(Struct, kw_only=True):
    """Coverage of one (park, operator, technology) in the window."""

    park: str
    operator: str
    tech: str
    measured_cells: int
    measured_area_m2: float
    area_share_by_class: dict[str, float]
    park_area_m2: float | None
    park_area_measured_share: float | None
    dead_zones: int
    dead_zone_area_m2: float
    change: SummaryChange | None


class CoverageSummary(Struct, kw_only=True):
    """``/coverage/summary``: the window, the resolution, the newest reading and one item per group."""

    window: list[str]
    resolution: int
    latest: str | None
    message: str | UnsetType = UNSET
    """Why the answer is empty (only when it is)."""
    items: list[CoverageSummaryItem]


class Network(Struct, kw_only=True):
    """One operator and technology of a park: readings with an RSRP and the newest one (ISO 8601)."""

    operator: str
    tech: str
    samples: int
    latest: str


class ParkNetworks(Struct, kw_only=True):
    """The networks measured in one park, ever."""

    park: str
    latest: str | None
    networks: list[Network]
    operators: list[str]
    technologies: list[str]


class OperatorList(Struct, kw_only=True):
    """``/coverage/operators``: per park, the operators and technologies with readings."""

    items: list[ParkNetworks]


# -- broadband ------------------------------------------------------------------------------------


class BroadbandTargets(Struct, kw_only=True):
    """The service targets a row is classed against."""

    down_mbps: float
    up_mbps: float
    latency_p95_ms: float
    loss_pct: float


class BroadbandRow(Struct, kw_only=True):
    """Broadband quality of one gateway (or one park: ``gw`` absent) in the window."""

    park: str
    gw: str | UnsetType = UNSET
    samples: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    jitter_mean_ms: float | None
    loss_mean_pct: float | None
    down_median_mbps: float | None
    up_median_mbps: float | None
    ipv6_share: float | None
    class_: str = msgspec.field(name="class")
    """``meets``, ``partial``, ``fails`` or ``unknown`` (no throughput measured)."""
    targets: BroadbandTargets


class BroadbandSummary(Struct, kw_only=True):
    """``/broadband/summary``."""

    window: list[str]
    items: list[BroadbandRow]


# -- factory --------------------------------------------------------------------------------------


class Production(Struct, kw_only=True):
    """Production figures of a machine or group in the window (ratios null when undefined)."""

    planned_s: float
    run_s: float
    fault_s: float
    parts: float
    rejects: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    ideal_cycle_suspect: bool


class MachineRow(Production, kw_only=True):
    """One machine: where it is booked, its last state and its production figures in the window."""

    park: str
    factory: str
    line: str
    gw: str
    dev: str
    state: str | None
    last_bucket_ms: int


class OeeRow(Production, kw_only=True):
    """Production figures of one group; the keys below the requested level are absent."""

    park: str
    factory: str | UnsetType = UNSET
    line: str | UnsetType = UNSET
    gw: str | UnsetType = UNSET
    dev: str | UnsetType = UNSET


class EnergyRow(Struct, kw_only=True):
    """Energy of one group; the keys below the requested level are absent."""

    park: str
    factory: str | UnsetType = UNSET
    line: str | UnsetType = UNSET
    gw: str | UnsetType = UNSET
    dev: str | UnsetType = UNSET
    energy_kwh: float
    peak_kw: float | None
    demand_interval_s: int


class Paged(Struct, kw_only=True):
    """Paging members of a listing: ``total`` items, this page's ``limit`` and ``offset``, and
    the ``offset`` of the next page (null on the last)."""

    total: int
    limit: int
    offset: int
    next_offset: int | None


class MachinePage(Paged, kw_only=True):
    """``/factory/machines``: one page of machines."""

    items: list[MachineRow]


class OeeReport(Paged, kw_only=True):
    """``/factory/oee``: one page of groups at ``level``."""

    level: str
    window: list[str]
    items: list[OeeRow]


class EnergyReport(Paged, kw_only=True):
    """``/factory/energy``: one page of groups at ``level``."""

    level: str
    window: list[str]
    items: list[EnergyRow]


# -- alarms ---------------------------------------------------------------------------------------


class AlarmInstance(Struct, kw_only=True):
    """One alarm instance and where it is in its lifecycle (see docs/alarms.md).

    ``state``: active_unacknowledged | active_acknowledged | cleared_unacknowledged | cleared |
    shelved | suppressed | out_of_service. Times are ISO 8601 UTC.
    """

    id: int
    rule_id: str
    park: str
    source: str
    priority: str
    state: str
    message: str
    raised_at: str | None
    cleared_at: str | None
    acknowledged_by: str | None
    acknowledged_at: str | None
    ack_comment: str | None
    shelved_until: str | None
    shelve_reason: str | None
    suppressed_by: str | None
    activations: int
    active: bool


class AlarmPage(Paged, kw_only=True):
    """``/alarms``: one page of alarm instances, open ones first, highest priority first."""

    items: list[AlarmInstance]


class AlarmRuleView(Struct, kw_only=True):
    """An alarm rule as stored: its fields (see ``settings.api.AlarmRule``), switch and origin."""

    id: str
    type: str
    enabled: bool
    origin: str
    updated_ms: int
    rule: dict[str, Any]


class AlarmRuleList(Struct, kw_only=True):
    """``/alarm-rules``: every rule, and those that do not decode with the reason."""

    items: list[AlarmRuleView]
    broken: dict[str, str]


class AlarmDelivery(Struct, kw_only=True):
    """One attempt to notify a channel (webhook or email) about alarms."""

    channel: str
    target: str
    alarm_ids: list[int]
    attempt: int
    ok: bool
    detail: str
    at_ms: int
    at: str


class AlarmDeliveryPage(Paged, kw_only=True):
    """``/alarm-deliveries``: one page of the delivery log, newest first."""

    items: list[AlarmDelivery]


class AlarmKpis(Struct, kw_only=True):
    """ISA-18.2 alarm system performance over a window (see docs/alarms.md for each figure)."""

    window: list[str]
    parks: list[str] | None
    activations: int
    days: float
    alarms_per_day: float
    alarms_per_10min_mean: float
    alarms_per_10min_max: int
    flood_share: float
    flood_threshold: int
    chattering: list[dict[str, Any]]
    stale: list[dict[str, Any]]
    top10: list[dict[str, Any]]
    top10_share: float
    priority_distribution: dict[str, float]


# -- fleet ----------------------------------------------------------------------------------------


class Uplink(Struct, kw_only=True):
    """The gateway's own mobile uplink, as it last reported it."""

    operator: str | None
    tech: str | None
    rsrp_dbm: float | None
    sinr_db: float | None


class Loss(Struct, kw_only=True):
    """The gateway's loss ledger: batches received, missing, duplicated and late."""

    received: int | None
    missing: int | None
    duplicated: int | None
    late: int | None
    last_seq: int | None
    restarts: int | None
    ts_ms: int


class Gateway(Struct, kw_only=True):
    """One gateway: last seen, online, what it reported, its loss ledger and its registration.

    A gateway known only from its loss ledger has no reported figures; one known only from the
    registry has never been seen (``last_seen_ms`` null).
    """

    park: str
    gw: str
    last_seen_ms: int | None
    online: bool
    reported_state: str | UnsetType | None = UNSET
    agent_version: str | UnsetType | None = UNSET
    config_hash: str | UnsetType | None = UNSET
    config_error: str | UnsetType | None = UNSET
    backlog: int | UnsetType | None = UNSET
    dropped: int | UnsetType | None = UNSET
    unconfirmed: int | UnsetType | None = UNSET
    expired: int | UnsetType | None = UNSET
    buffer_pct: float | UnsetType | None = UNSET
    uplink: Uplink | UnsetType = UNSET
    loss: Loss | UnsetType | None = UNSET
    registered: bool | UnsetType = UNSET
    description: str | UnsetType = UNSET


class GatewayPage(Paged, kw_only=True):
    """``/gateways``: one page of gateways."""

    items: list[Gateway]


# -- health ---------------------------------------------------------------------------------------


class Readiness(Struct, kw_only=True):
    """``/readyz``: ``ready`` when every check says ``ok``; otherwise each failing check's reason."""

    status: str
    checks: dict[str, str]


class OeePoint(Struct, kw_only=True):
    """One time bucket of an OEE series: ``t_ms`` is the bucket's start (UTC milliseconds)."""

    t_ms: int
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None


class OeeSeriesItem(Struct, kw_only=True):
    """The OEE series of one group; the keys below the requested level are absent."""

    park: str
    factory: str | UnsetType = UNSET
    line: str | UnsetType = UNSET
    points: list[OeePoint]


class OeeSeries(Struct, kw_only=True):
    """``/factory/oee/series``: availability, performance, quality and OEE per bucket and group."""

    level: str
    step_s: int
    window: list[str]
    items: list[OeeSeriesItem]


class EnergyPoint(Struct, kw_only=True):
    """One time bucket of an energy series: energy used in it and its peak demand."""

    t_ms: int
    energy_kwh: float | None
    peak_kw: float | None


class EnergySeriesItem(Struct, kw_only=True):
    """The energy series of one group; the keys below the requested level are absent."""

    park: str
    factory: str | UnsetType = UNSET
    line: str | UnsetType = UNSET
    points: list[EnergyPoint]


class EnergySeries(Struct, kw_only=True):
    """``/factory/energy/series``: energy (kWh) and peak demand (kW) per bucket and group."""

    level: str
    step_s: int
    demand_interval_s: int
    window: list[str]
    items: list[EnergySeriesItem]


class StatusPoint(Struct, kw_only=True):
    """One status report of a gateway: its state, store-and-forward backlog and uplink signal."""

    ts_ms: int
    state: str | None
    backlog: int | None
    buffer_pct: float | None
    uplink_operator: str | None
    uplink_tech: str | None
    uplink_rsrp_dbm: float | None
    uplink_sinr_db: float | None


class GatewayHistory(Struct, kw_only=True):
    """``/gateways/{gw}/history``: a gateway's status reports in the window, oldest first (evenly
    thinned to at most ``max_points``; ``total`` is the count before thinning)."""

    park: str
    gw: str
    window: list[str]
    total: int
    max_points: int
    items: list[StatusPoint]


MODELS: Final[tuple[type[Struct], ...]] = (
    CoverageSummary,
    OperatorList,
    BroadbandSummary,
    MachinePage,
    OeeReport,
    EnergyReport,
    AlarmPage,
    AlarmInstance,
    AlarmRuleList,
    AlarmRuleView,
    AlarmKpis,
    AlarmDeliveryPage,
    Gateway,
    GatewayPage,
    Readiness,
    OeeSeries,
    EnergySeries,
    GatewayHistory,
)
"""Every answer struct filed by :func:`ok`; their schemas join the OpenAPI components."""


def ok(model: type[Struct], description: str) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses`` entry documenting its 200 answer as ``model``."""
    if model not in MODELS:
        raise ValueError(f"{model.__name__} is not in api.models.MODELS: add it there")
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def schema_components() -> dict[str, Any]:
    """The JSON Schemas of :data:`MODELS` and every struct they contain, by name."""
    _, components = msgspec.json.schema_components(MODELS, ref_template="#/components/schemas/{name}")
    return components
