"""The embedded DuckDB sink: columnar bulk appends into one file, idempotent by row key."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa

from ingest.errors import ConfigError, PermanentError, RetryableError
from ingest.model import WriteBatch, WriteResult
from ingest.rows import batch_tables
from settings.ingest import DuckdbSinkSettings, SinkSettings
from storage.duckdb_store import DuckStore, StoreDataError, StoreError
from storage.ledger_snapshot import LedgerSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


class DuckdbSink:
    """Writes batches into a DuckDB file from one dedicated worker thread.

    Args:
        settings: ``[sink]`` with ``type = "duckdb"``.
        src: this ingester's name (unused: one process owns the file).
    """

    def __init__(self, settings: SinkSettings, *, src: str = "") -> None:
        if not isinstance(settings, DuckdbSinkSettings):
            raise ConfigError('sink: DuckdbSink needs [sink] type = "duckdb"')
        self._settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-sink")
        self._store: DuckStore | None = None
        self._next_retention = 0.0

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def start(self) -> list[LedgerSnapshot]:
        def open_store() -> list[LedgerSnapshot]:
            try:
                self._store = DuckStore(
                    self._settings.path,
                    threads=self._settings.threads,
                    memory_limit_mb=self._settings.memory_limit_mb,
                )
            except StoreError as exc:
                raise ConfigError(f"sink.path: {exc}; is another ingester using this file?") from exc
            return self._store.latest_ledger()

        return await self._run(open_store)

    def _write_sync(self, tables: list[tuple[str, pa.Table, bool]]) -> None:
        assert self._store is not None, "start() first"
        try:
            self._store.append(tables)
            now = time.monotonic()
            if self._settings.retention_days and now >= self._next_retention:
                self._next_retention = now + self._settings.retention_interval_s
                cutoff_ms = int(time.time() * 1000) - self._settings.retention_days * 86_400_000
                deleted = self._store.delete_older_than(cutoff_ms)
                if deleted:
                    log.info(
                        "retention: deleted %d rows older than %d days",
                        deleted,
                        self._settings.retention_days,
                    )
        except StoreDataError as exc:
            raise PermanentError(str(exc)) from exc
        except StoreError as exc:
            raise RetryableError(str(exc)) from exc

    async def write(self, batch: WriteBatch) -> WriteResult:
        """Append ``batch`` in one transaction.

        Raises:
            PermanentError: a value of the batch that Arrow or DuckDB cannot store (nothing is
                stored; the caller narrows the batch down to it).
            RetryableError: the file cannot be written now.
        """
        # Build the Arrow tables here, in the event loop: it is Python work that holds the GIL
        # anyway, and doing it in the worker thread made the two threads convoy on the GIL
        # (the worker releases and retakes it at every Arrow/DuckDB call). The worker thread
        # then runs DuckDB only, which releases the GIL while it executes.
        try:
            tables = batch_tables(batch)
        except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise PermanentError(f"not storable in DuckDB: {exc}") from exc
        await self._run(lambda: self._write_sync(tables))
        return WriteResult(readings=batch.reading_count())

    async def aclose(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await self._run(store.close)
        self._executor.shutdown(wait=True)
