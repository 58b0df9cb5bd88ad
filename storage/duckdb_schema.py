"""DDL of the embedded DuckDB store (see :mod:`storage.schema` for the layout)."""

from __future__ import annotations

from typing import Final

from storage.schema import (
    COMMON_COLUMNS,
    DEAD_LETTER,
    GATEWAY_STATUS,
    GENERIC_COLUMNS,
    KIND_COLUMNS,
    LOSS_LEDGER,
)

STATUS_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "TIMESTAMP"),
    ("park", "VARCHAR"),
    ("gw", "VARCHAR"),
    ("state", "VARCHAR"),
    ("agent_version", "VARCHAR"),
    ("config_hash", "VARCHAR"),
    ("backlog", "BIGINT"),
    ("dropped", "BIGINT"),
    ("unconfirmed", "BIGINT"),
    ("expired", "BIGINT"),
    ("buffer_pct", "DOUBLE"),
    ("uplink_operator", "VARCHAR"),
    ("uplink_tech", "VARCHAR"),
    ("uplink_rsrp_dbm", "DOUBLE"),
    ("uplink_sinr_db", "DOUBLE"),
    ("config_error", "VARCHAR"),
)
"""One row per status message received (the latest per gateway is its current state)."""

LEDGER_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "TIMESTAMP"),
    ("park", "VARCHAR"),
    ("gw", "VARCHAR"),
    ("received", "BIGINT"),
    ("missing", "BIGINT"),
    ("duplicated", "BIGINT"),
    ("late", "BIGINT"),
    ("last_seq", "BIGINT"),
    ("ingester", "VARCHAR"),
    ("restarts", "BIGINT"),
)
"""Cumulative loss-ledger counters per gateway and ingester, one snapshot row per flush (NULL
ingester: written by a version that did not record it; NULL restarts: by a version that did not
count sequence restarts)."""

DEAD_LETTER_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "TIMESTAMP"),
    ("topic", "VARCHAR"),
    ("park", "VARCHAR"),
    ("gw", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("raw", "VARCHAR"),
)
"""Rejected readings and batches: when received, where from, why, and the raw bytes (truncated)."""


def table_columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """Every table of the store with its ``(column, SQL type)`` pairs."""
    tables: dict[str, tuple[tuple[str, str], ...]] = {}
    for kind, cols in KIND_COLUMNS.items():
        extra = GENERIC_COLUMNS if kind == "generic" else tuple((c.name, c.sql_type) for c in cols)
        tables[kind] = COMMON_COLUMNS + extra
    tables[DEAD_LETTER] = DEAD_LETTER_COLUMNS
    tables[GATEWAY_STATUS] = STATUS_COLUMNS
    tables[LOSS_LEDGER] = LEDGER_COLUMNS
    return tables


def ddl() -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` statements for every table."""
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c} {t}' for c, t in cols)})"
        for name, cols in table_columns().items()
    ]


def migrations(existing: dict[str, set[str]]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` statements that bring older tables up to this layout.

    ``existing`` maps each table found in the file to its column names. Columns are only ever
    added to the layout (a new field of a reading kind), so a file written by an older version
    gains the new columns, NULL in its old rows; tables not yet created are left to :func:`ddl`.
    """
    return [
        f"ALTER TABLE {name} ADD COLUMN {col} {typ}"
        for name, cols in table_columns().items()
        if name in existing
        for col, typ in cols
        if col not in existing[name]
    ]
