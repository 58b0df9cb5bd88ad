"""The sink protocol and the registry of sinks by name.

A sink takes whole write batches. ``write`` returns only once everything in the batch is durably
stored (readings, and as dead letters the points the store refused); it raises
:class:`ingest.errors.RetryableError` when the store is unavailable, in which case nothing of the
batch may be assumed stored and the caller spools it. Rewriting a batch is always safe: storage
is idempotent by row key / series + timestamp.
"""

from __future__ import annotations

import importlib
from typing import Final, Protocol

from ingest.model import WriteBatch, WriteResult
from settings.ingest import SinkSettings, SinkType
from storage.ledger_snapshot import LedgerSnapshot

SINKS: Final[dict[SinkType, str]] = {
    "influxdb": "ingest.sinks.influxdb:InfluxSink",
    "duckdb": "ingest.sinks.duckdb:DuckdbSink",
}
"""Sink name → ``module:Class``, imported only when chosen."""


class Sink(Protocol):
    """Where validated readings go."""

    async def start(self) -> list[LedgerSnapshot]:
        """Prepare the store (schema, database, retention) and return the stored loss ledger."""
        ...

    async def write(self, batch: WriteBatch) -> WriteResult:
        """Durably store ``batch``; raise ``RetryableError`` when the store cannot take it now."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class SinkFactory(Protocol):
    def __call__(self, settings: SinkSettings, *, src: str) -> Sink: ...


def load_sink(settings: SinkSettings, *, src: str) -> Sink:
    """Build the sink named by ``settings.type``; ``src`` names this ingester (dead-letter tag)."""
    name: SinkType = settings.__struct_config__.tag  # type: ignore[assignment]
    module_name, _, class_name = SINKS[name].partition(":")
    factory: SinkFactory = getattr(importlib.import_module(module_name), class_name)
    return factory(settings, src=src)
