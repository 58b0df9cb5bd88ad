"""The *Gateway fleet* dashboard: online state, backlog, loss ledger, uplink signal, gateway health.

``gateway_status`` holds every status a gateway published (the broker publishes ``offline`` from
the agent's Last Will), so a gateway's current state is its ``last`` status within the time range.
The loss ledger's counters are cumulative per gateway and ingester (with a shared subscription
every ingester counts the batches it received): the queries take each ingester's latest
snapshot and add them up the way :func:`storage.query.merge_ledger` does, so a gateway's missing
batches are the span of its sequence numbers less everything received. Differences per interval
show when batches arrived, arrived twice or late.
"""

from __future__ import annotations

from typing import Final

from dashboards import panels as p
from dashboards.influxql import cond, group_by, group_by_time, q, rsrp_thresholds_steps, var_match, where
from dashboards.panels import Json

UID: Final = "parkwatch-gateway-fleet"

PARK = var_match("park", "park")
GW = var_match("gw", "gw")
FILTER = (PARK, GW)


def gateways_in_state(state: str) -> str:
    """How many gateways' last status in the time range is ``state``."""
    last = (
        f"SELECT last({q('state')}) AS {q('state')} FROM {q('gateway_status')} {where(*FILTER)} "
        f"{group_by('park', 'gw')}"
    )
    return f"SELECT count({q('state')}) AS {q(state)} FROM ({last}) WHERE {cond('state', '=', state)}"


def _series(measurement: str, field: str, agg: str = "mean", fill: str = "null") -> str:
    return (
        f"SELECT {agg}({q(field)}) AS {q(field)} FROM {q(measurement)} {where(*FILTER)} "
        f"{group_by_time('gw', fill=fill)}"
    )


def _ledger_delta(field: str) -> str:
    """Per interval and gateway: the increase of ``field``, added up over the ingesters."""
    per_ingester = (
        f"SELECT non_negative_difference(last({q(field)})) AS {q(field)} FROM {q('loss_ledger')} "
        f"{where(*FILTER)} {group_by_time('gw', 'ingester', fill='none')}"
    )
    return f"SELECT sum({q(field)}) AS {q(field)} FROM ({per_ingester}) {group_by_time('gw', fill='none')}"


def ledger_per_gateway(*, loss_pct: bool = True) -> str:
    """Per gateway: the latest ledger of every ingester, added up (see the module docstring)."""
    latest = (
        f"SELECT last({q('received')}) AS {q('received')}, last({q('duplicated')}) AS {q('duplicated')}, "
        f"last({q('late')}) AS {q('late')}, last({q('last_seq')}) AS {q('last_seq')}, "
        f"last({q('last_seq')}) - last({q('received')}) - last({q('missing')}) + 1 AS {q('first_seq')} "
        f"FROM {q('loss_ledger')} {where(*FILTER)} {group_by('park', 'gw', 'ingester')}"
    )
    span = f"max({q('last_seq')}) - min({q('first_seq')}) + 1"
    pct = f", 100 * ({span} - sum({q('received')})) / ({span}) AS {q('loss_pct')}" if loss_pct else ""
    return (
        f"SELECT sum({q('received')}) AS {q('received')}, {span} - sum({q('received')}) AS {q('missing')}, "
        f"sum({q('duplicated')}) AS {q('duplicated')}, sum({q('late')}) AS {q('late')}{pct}, "
        f"max({q('last_seq')}) AS {q('last_seq')} FROM ({latest}) {group_by('park', 'gw')}"
    )


def build() -> Json:
    """The dashboard JSON."""
    state_map = p.value_colors({"online": p.STATE_COLORS["online"], "offline": p.STATE_COLORS["offline"]})
    lay = p.Layout()
    lay.row("Fleet")
    lay.add(
        p.stat(
            "Online",
            [p.target(gateways_in_state("online"))],
            description="Gateways whose last status in the time range is online.",
            steps=p.thresholds((None, "green")),
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Offline",
            [p.target(gateways_in_state("offline"))],
            description="Gateways whose last status is offline (the broker published their Last Will).",
            steps=p.thresholds((None, "green"), (1, "red")),
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Readings lost",
            [
                p.target(
                    f"SELECT sum({q('missing')}) AS {q('missing')} FROM ({ledger_per_gateway(loss_pct=False)})"
                )
            ],
            description="Batches missing now (sequence gaps not filled), all gateways, from the ledgers "
            "stored in the time range.",
            steps=p.thresholds((None, "green"), (1, "orange")),
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Dead letters",
            [
                p.target(
                    f"SELECT count({q('reason')}) AS {q('dead_letters')} FROM {q('dead_letter')} {where(*FILTER)}"
                )
            ],
            description="Readings or messages of the selected gateways that the ingester rejected.",
            steps=p.thresholds((None, "green"), (1, "orange")),
        ),
        w=4,
        h=4,
    )
    lay.add(
        p.stat(
            "Max buffer fill",
            [
                p.target(
                    f"SELECT max({q('buffer_pct')}) AS {q('buffer_pct')} FROM {q('gateway_status')} {where(*FILTER)}"
                )
            ],
            description="Highest disk-buffer fill any gateway reported; at 100 % the agent drops the oldest readings.",
            unit="percent",
            steps=p.thresholds((None, "green"), (50, "orange"), (90, "red")),
        ),
        w=8,
        h=4,
    )
    lay.add(
        p.table(
            "Gateways",
            [
                p.target(
                    f"SELECT last({q('state')}) AS {q('state')}, last({q('agent_version')}) AS {q('agent_version')}, "
                    f"last({q('config_hash')}) AS {q('config_hash')}, last({q('backlog')}) AS {q('backlog')}, "
                    f"last({q('buffer_pct')}) AS {q('buffer_pct')}, last({q('dropped')}) AS {q('dropped')}, "
                    f"last({q('uplink_operator')}) AS {q('uplink_operator')}, "
                    f"last({q('uplink_rsrp_dbm')}) AS {q('uplink_rsrp_dbm')} "
                    f"FROM {q('gateway_status')} {where(*FILTER)} {group_by('park', 'gw')}",
                    fmt="table",
                )
            ],
            description="Last reported value of each status field per gateway within the time range.",
            mappings=state_map,
            sort_by="state",
            sort_desc=False,
        ),
        w=24,
        h=8,
    )
    lay.add(
        p.state_timeline(
            "Online / offline",
            [
                p.target(
                    f"SELECT last({q('state')}) AS {q('state')} FROM {q('gateway_status')} {where(*FILTER)} "
                    f"{group_by_time('gw', fill='previous')}",
                    alias="$tag_gw",
                )
            ],
            description="Gateway state over time (status messages and Last Will).",
            colors={"online": p.STATE_COLORS["online"], "offline": p.STATE_COLORS["offline"]},
        ),
        w=24,
        h=7,
    )

    lay.row("Buffers and delivery")
    lay.add(
        p.timeseries(
            "Backlog",
            [p.target(_series("gateway_status", "backlog", "max"), alias="$tag_gw")],
            description="Readings waiting in each gateway's disk buffer (rises while the uplink or broker is down).",
            unit="short",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Dropped by buffer cap",
            [
                p.target(
                    f"SELECT non_negative_difference(max({q('dropped')})) AS {q('dropped')} FROM {q('gateway_status')} "
                    f"{where(*FILTER)} {group_by_time('gw', fill='none')}",
                    alias="$tag_gw",
                )
            ],
            description="Readings each gateway dropped (oldest first) because its disk buffer was full.",
            unit="short",
            bars=True,
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Loss ledger",
            [
                p.target(_ledger_delta("received"), alias="$tag_gw received"),
                p.target(_ledger_delta("duplicated"), ref_id="B", alias="$tag_gw duplicated"),
                p.target(_ledger_delta("late"), ref_id="C", alias="$tag_gw late"),
            ],
            description="Batches received, received twice or late per interval, from the gateways' sequence "
            "numbers (missing batches: the totals below).",
            unit="short",
            bars=True,
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.table(
            "Loss ledger totals",
            [
                p.target(
                    ledger_per_gateway(),
                    fmt="table",
                )
            ],
            description="Cumulative ledger counters per gateway and the lost share of batches.",
            sort_by="loss_pct",
        ),
        w=24,
        h=7,
    )

    lay.row("Uplink and gateway health")
    lay.add(
        p.timeseries(
            "Uplink RSRP",
            [p.target(_series("gateway_status", "uplink_rsrp_dbm"), alias="$tag_gw")],
            description="Signal of each gateway's own mobile uplink; bands are the signal classes.",
            unit="dBm",
            steps=p.thresholds(*rsrp_thresholds_steps()),
            threshold_style="area",
        ),
        w=12,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Uplink SINR",
            [p.target(_series("gateway_status", "uplink_sinr_db"), alias="$tag_gw")],
            description="SINR of each gateway's uplink; below 0 dB there is no usable service.",
            unit="dB",
            steps=p.thresholds((None, "red"), (0, "green")),
            threshold_style="dashed",
        ),
        w=12,
        h=8,
    )
    for field, title in (("cpu_pct", "CPU"), ("mem_pct", "Memory"), ("disk_pct", "Disk")):
        lay.add(
            p.timeseries(
                title,
                [p.target(_series("system", field, "max"), alias="$tag_gw")],
                description=f"{title} use of each gateway (edge agent system collector), peak per interval.",
                unit="percent",
                min_value=0,
            ),
            w=6,
            h=7,
        )
    lay.add(
        p.timeseries(
            "Clock offset",
            [p.target(_series("system", "clock_offset_ms"), alias="$tag_gw")],
            description="Gateway clock minus NTP time; readings are timestamped on the gateway.",
            unit="ms",
        ),
        w=6,
        h=7,
    )
    return p.dashboard(
        uid=UID,
        title="parkwatch · Gateway fleet",
        description="Edge gateways: online state, disk backlog, loss ledger, uplink signal and health.",
        tags=["parkwatch", "fleet"],
        variables=[
            p.query_variable(
                "park",
                "Park",
                f"SHOW TAG VALUES FROM {q('gateway_status')} WITH KEY = {q('park')}",
                description="Industrial park(s).",
            ),
            p.query_variable(
                "gw",
                "Gateway",
                f"SHOW TAG VALUES FROM {q('gateway_status')} WITH KEY = {q('gw')} WHERE {PARK}",
                description="Gateway id(s) in the selected parks.",
            ),
        ],
        layout=lay,
        time_from="now-6h",
        refresh="30s",
    )
