"""What flows from the consumer to a sink: validated readings, dead letters, status and ledger rows.

These are msgspec structs so that a batch the sink cannot take can be spooled to disk as
MessagePack and read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from contract.messages import Status
from contract.readings import AnyReading


class Part(msgspec.Struct, kw_only=True, frozen=True, array_like=True):
    """The valid readings of one MQTT message, with their H3 cells (0 = no position).

    Attributes:
        park, gw: from the topic (the payload's gateway id was checked against it).
        readings: the readings, in payload order.
        h3: H3 cell (as an unsigned 64-bit integer) per reading, 0 when it has none.
        sent_ms: the batch's ``sent`` stamp (latency measurement), 0 when absent.
        replay: the readings may already be stored: the broker redelivered the message (DUP),
            the loss ledger saw its sequence number before, or it comes back from the spool.
            Stores that deduplicate at a cost (DuckDB) do so only for these.
    """

    park: str
    gw: str
    readings: list[AnyReading]
    h3: list[int]
    sent_ms: int = 0
    replay: bool = False


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True, array_like=True):
    """A rejected reading, batch or point: where it came from, why, and its raw bytes (truncated).

    ``ts_ns`` is when it was received, made unique per ingester process, and ``src`` names the
    ingester, so two dead letters never share an InfluxDB series and timestamp.
    """

    ts_ns: int
    topic: str
    park: str
    gw: str
    reason: str
    raw: str
    src: str = ""


class StatusRow(msgspec.Struct, kw_only=True, frozen=True, array_like=True):
    """A gateway status message (``ts_ms``: its own stamp, else when it was received)."""

    ts_ms: int
    park: str
    gw: str
    status: Status


class LedgerRow(msgspec.Struct, kw_only=True, frozen=True, array_like=True):
    """Cumulative loss-ledger counters of one gateway at ``ts_ms``."""

    ts_ms: int
    park: str
    gw: str
    received: int
    missing: int
    duplicated: int
    late: int
    last_seq: int
    ingester: str = ""
    """The ingester that counted (its MQTT client id): with a shared subscription every ingester
    keeps its own ledger over the batches it received, and readers add them up."""
    restarts: int = 0
    """Sequence restarts: a number that jumped beyond the ledger's window (forwards or back)."""


class WriteBatch(msgspec.Struct, kw_only=True):
    """Everything one sink write carries; it is written (or spooled) as a whole."""

    parts: list[Part] = msgspec.field(default_factory=list)
    dead_letters: list[DeadLetter] = msgspec.field(default_factory=list)
    statuses: list[StatusRow] = msgspec.field(default_factory=list)
    ledger: list[LedgerRow] = msgspec.field(default_factory=list)

    def reading_count(self) -> int:
        return sum(len(p.readings) for p in self.parts)

    def is_empty(self) -> bool:
        return not (self.parts or self.dead_letters or self.statuses or self.ledger)


@dataclass(slots=True)
class WriteResult:
    """What a sink did with a batch.

    Attributes:
        readings: readings stored (a replayed reading that was already stored counts too).
        rejected: points the store refused, which the sink stored as dead letters instead.
    """

    readings: int = 0
    rejected: list[DeadLetter] = field(default_factory=list)
