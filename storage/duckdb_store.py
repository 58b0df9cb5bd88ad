"""The embedded DuckDB store: one file, tables from :mod:`storage.duckdb_schema`, bulk appends.

Blocking by nature (DuckDB is an in-process engine): async callers run these methods in one
dedicated worker thread. One process writes a file at a time (DuckDB's own lock); readers in
other processes open it read-only or go through the API.

Idempotency: an append collapses rows with the same row key (:func:`storage.schema.row_key`)
inside the appended data, and data flagged as a *replay* also skips rows whose key is already
stored, so a replayed batch never creates a second row. That check is an anti-join restricted
to the data's time range (DuckDB prunes row groups by their ``ts`` zone maps); it costs about
a third of the append rate, so the ingester flags as replays only what may be one (MQTT DUP,
a sequence number seen before, a spool replay). ``bench/ingest.py`` measures both.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Sequence
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from storage.duckdb_schema import ddl, migrations, table_columns
from storage.ledger_snapshot import LedgerSnapshot
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_COLUMNS, LOSS_LEDGER, row_key

log = logging.getLogger(__name__)

RETENTION_TABLES: Final = (*KIND_COLUMNS, DEAD_LETTER, GATEWAY_STATUS)
"""Tables the retention delete trims (the loss ledger keeps its history: it is tiny)."""

_NAMES = itertools.count()


class StoreError(Exception):
    """The DuckDB file cannot be opened or written (locked by another process, disk full, ...)."""


class StoreDataError(StoreError):
    """DuckDB refused the appended data itself (a value it cannot convert or store): writing the
    same data again fails again, whatever the state of the file."""


class DuckStore:
    """One DuckDB file opened for writing.

    Args:
        path: database file (``:memory:`` for tests).
        threads: DuckDB worker threads, 0 for DuckDB's default.
        memory_limit_mb: DuckDB buffer memory, 0 for DuckDB's default (80% of the RAM).
    """

    def __init__(self, path: str, *, threads: int = 0, memory_limit_mb: int = 0) -> None:
        try:
            self._con = duckdb.connect(path)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open DuckDB file {path}: {exc}") from exc
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit_mb:
            self._con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        self._columns = {name: tuple(c for c, _ in cols) for name, cols in table_columns().items()}
        existing: dict[str, set[str]] = {}
        for table, column in self._con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall():
            existing.setdefault(table, set()).add(column)
        for stmt in migrations(existing):
            log.info("DuckDB file %s: %s (written by an older version)", path, stmt)
            self._con.execute(stmt)
        for stmt in ddl():
            self._con.execute(stmt)

    def append(self, items: Sequence[tuple[str, pa.Table, bool]]) -> int:
        """Append Arrow tables to their store tables in one transaction; return the rows inserted.

        Each item is ``(table, data, replay)``. Reading tables (kinds) always collapse rows with
        the same row key inside ``data``; with ``replay`` true, rows whose key is already stored
        are skipped too (an anti-join over the data's time range). The other tables (dead
        letters, status, ledger) are appended as they are.

        Raises:
            StoreError: the write failed; nothing of ``items`` is stored.
        """
        con = self._con
        inserted = 0
        try:
            con.execute("BEGIN TRANSACTION")
            for table, data, replay in items:
                if data.num_rows == 0:
                    continue
                inserted += self._append_one(table, data, replay=replay)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            # The transaction may already be gone; the original error is what matters.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.DataError | duckdb.IntegrityError):
                raise StoreDataError(f"DuckDB refused the data: {exc}") from exc
            raise StoreError(f"DuckDB append failed: {exc}") from exc
        return inserted

    def _append_one(self, table: str, data: pa.Table, *, replay: bool) -> int:
        name = f"_new_{next(_NAMES)}"
        cols = ", ".join(data.column_names)
        self._con.register(name, data)
        try:
            if table not in KIND_COLUMNS:
                self._con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}")
                return int(data.num_rows)
            # Columns absent from the appended data are NULL in it, so they match only NULL.
            key = row_key(table)
            present = set(data.column_names)
            source = f"(SELECT DISTINCT ON ({', '.join(k for k in key if k in present)}) * FROM {name}) AS n"
            if not replay:
                row = self._con.execute(
                    f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {source}"
                ).fetchone()
                return int(row[0]) if row else 0
            match = " AND ".join(
                f"e.{k} IS NOT DISTINCT FROM n.{k}" if k in present else f"e.{k} IS NULL" for k in key
            )
            # The time range goes in as constants so that DuckDB prunes row groups by their ts
            # zone maps (a subquery bound would scan the whole table on every append).
            lo, hi = _ts_bounds_us(data)
            row = self._con.execute(
                f"""
                INSERT INTO {table} ({cols})
                SELECT {cols} FROM {source}
                WHERE NOT EXISTS (
                    SELECT 1 FROM {table} AS e
                    WHERE e.ts BETWEEN make_timestamp({lo}) AND make_timestamp({hi}) AND {match}
                )
                """
            ).fetchone()
            return int(row[0]) if row else 0
        finally:
            with contextlib.suppress(duckdb.Error):  # keep the original error of an aborted transaction
                self._con.unregister(name)

    def delete_older_than(self, cutoff_ms: int) -> int:
        """Delete rows older than ``cutoff_ms`` (epoch ms) from every retention table."""
        deleted = 0
        try:
            for table in RETENTION_TABLES:
                row = self._con.execute(
                    f"DELETE FROM {table} WHERE ts < make_timestamp(?::BIGINT * 1000)", [cutoff_ms]
                ).fetchone()
                deleted += int(row[0]) if row else 0
        except duckdb.Error as exc:
            raise StoreError(f"DuckDB retention delete failed: {exc}") from exc
        return deleted

    def latest_ledger(self) -> list[LedgerSnapshot]:
        """The most recent loss-ledger snapshot of every gateway and ingester."""
        rows = self._con.execute(
            f"""
            SELECT park, gw, received, missing, duplicated, late, last_seq, ingester,
                coalesce(restarts, 0) FROM {LOSS_LEDGER}
            QUALIFY row_number() OVER (
                PARTITION BY gw, ingester ORDER BY ts DESC, received + duplicated + late DESC) = 1
            """
        ).fetchall()
        return [LedgerSnapshot(*map(_plain, r)) for r in rows]

    def count(self, table: str) -> int:
        """Rows in ``table`` (benchmarks and tests)."""
        if table not in self._columns:
            raise ValueError(f"unknown table {table!r}")
        row = self._con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query (tests, benchmarks, tools)."""
        return self._con.execute(query, list(params)).fetchall()

    def close(self) -> None:
        self._con.close()


def _ts_bounds_us(data: pa.Table) -> tuple[int, int]:
    """Smallest and largest ``ts`` of ``data`` as integer epoch microseconds."""
    bounds = pc.min_max(data.column("ts").cast(pa.timestamp("us")).cast(pa.int64()))
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, int) else value
