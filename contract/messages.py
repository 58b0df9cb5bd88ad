"""Envelopes of contract version 1: telemetry batch, gateway status, down-link config, command and confirm."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from contract.ids import Id
from contract.limits import MAX_READINGS_PER_BATCH
from contract.readings import AnyReading, Text, TimestampMs

Version = Literal[1]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
"""A count that every store and every JSON reader keeps exact (InfluxDB and DuckDB store 64-bit
signed integers; the query side and JavaScript read them as doubles, exact up to 2^53 - 1)."""


class Batch(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A telemetry batch published on ``.../up/telemetry``.

    Attributes:
        v: contract version (1).
        gw: the publishing gateway's id; must equal the gateway segment of the topic.
        seq: per-gateway sequence number, +1 for every new batch, kept across restarts; a
            replayed batch keeps its number, so receivers can count lost, duplicated and late batches.
        sent: when the batch was (first) handed to the MQTT client, epoch milliseconds UTC.
        readings: 1-1000 readings.
    """

    v: Version
    gw: Id
    seq: Seq
    readings: Annotated[list[AnyReading], msgspec.Meta(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
    sent: TimestampMs | None = None


class RawBatch(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The envelope with readings left undecoded, to find the bad ones one by one."""

    v: Version
    gw: Id
    seq: Seq
    readings: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
    sent: TimestampMs | None = None


class Uplink(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The gateway's own uplink as reported in its status."""

    operator: Text | None = None
    tech: Text | None = None
    rsrp_dbm: Annotated[float, msgspec.Meta(ge=-156.0, le=-31.0)] | None = None
    """3GPP TS 36.133 / 38.133 reporting range, as for a cellular reading (bounds reject NaN/inf)."""
    sinr_db: Annotated[float, msgspec.Meta(ge=-23.0, le=40.0)] | None = None


class Status(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Gateway status, retained on ``.../up/status``.

    The agent publishes ``online`` (birth) on connect and periodically; the broker publishes the
    agent's Last Will, ``{"v":1,"gw":"<id>","state":"offline"}``, when the connection is lost.

    Attributes:
        state: ``online`` or ``offline``.
        ts: when the status was produced (absent in the Last Will).
        agent_version, config_hash: what runs on the gateway.
        backlog: readings waiting in the disk buffer; ``dropped``: readings dropped by the buffer cap
            (both 0 to 2^53 - 1).
        uplink: the gateway's own mobile uplink; ``rsrp_dbm`` -156 to -31, ``sinr_db`` -23 to 40.
        config_error: why the last remote config was rejected, if it was.
        unconfirmed: readings published (PUBACKed) and kept until an ingester confirms them.
        expired: readings given up unconfirmed after the agent's confirm retention.
    """

    v: Version
    gw: Id
    state: Literal["online", "offline"]
    ts: TimestampMs | None = None
    agent_version: Text | None = None
    config_hash: Text | None = None
    backlog: Count | None = None
    dropped: Count | None = None
    buffer_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    uplink: Uplink | None = None
    config_error: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    unconfirmed: Count | None = None
    expired: Count | None = None


class ConfigUpdate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A new agent configuration on ``.../down/config``: the agent's TOML settings as a table."""

    v: Version
    config: dict[str, Any]


class Command(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A one-off command on ``.../down/command``; the agent answers in its next status."""

    v: Version
    cmd: Literal["publish_status", "flush", "restart_collectors"]
    id: Text | None = None


MAX_CONFIRM_RANGES: Final = 1000
"""Most sequence ranges in one :class:`Confirm` (a longer list is split over several messages)."""
SeqRange = tuple[Seq, Seq]


class Confirm(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Batches durably stored by an ingester, on ``.../down/confirm`` (QoS 1, not retained).

    The gateway may forget a confirmed batch. A published batch that no ingester confirms while
    later numbers are confirmed is resent with its original ``seq`` (gap repair, see
    docs/wire-contract.md). Confirmations are idempotent: one may repeat or get lost.

    Attributes:
        gw: the gateway whose batches are confirmed; must equal the topic's gateway.
        stored: inclusive ``[first, last]`` sequence ranges stored since the previous confirm
            of this ingester, 1-1000 ranges, each with ``first <= last``.
        by: the confirming ingester (informative).
    """

    v: Version
    gw: Id
    stored: Annotated[list[SeqRange], msgspec.Meta(min_length=1, max_length=MAX_CONFIRM_RANGES)]
    by: Text | None = None

    def __post_init__(self) -> None:
        for first, last in self.stored:
            if first > last:
                raise ValueError(f"stored range [{first}, {last}] has first > last")
