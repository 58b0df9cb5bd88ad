"""The stored loss-ledger counters of one gateway, as both sinks hand them back at start-up.

A leaf module: importing it pulls in neither DuckDB nor pyarrow, so the InfluxDB sink stays
free of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """The latest stored loss-ledger counters of one gateway."""

    park: str
    gw: str
    received: int
    missing: int
    duplicated: int
    late: int
    last_seq: int
    ingester: str | None = None
    """Who counted (None: a snapshot from a version that did not record it)."""
    restarts: int = 0
    """Sequence restarts seen: jumps beyond the ledger's window (see :mod:`ingest.ledger`)."""
