"""Pure conversion of a write batch into Arrow tables, one per DuckDB table (columnar, no row loop in SQL).

Readings are grouped by kind; each struct becomes a tuple (``msgspec.structs.astuple``, C speed)
and the tuples are transposed into columns. The ``generic`` kind is stored long: one row per
named value (``num`` for numbers as floats, ``text`` for strings, ``flag`` for booleans).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa

from contract.readings import Generic, Reading
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_LAYOUTS, LOSS_LEDGER, FieldType, KindLayout

_ARROW_TYPES: Final[dict[FieldType, pa.DataType]] = {
    "float": pa.float64(),
    "int": pa.int64(),
    "str": pa.string(),
    "bool": pa.bool_(),
}
_TS = pa.timestamp("ms")
_json = msgspec.json.Encoder()
_astuple = msgspec.structs.astuple


class _Group:
    __slots__ = ("gw", "h3", "park", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.park: list[str] = []
        self.gw: list[str] = []
        self.h3: list[int] = []


def _h3_array(values: list[int]) -> pa.Array:
    arr = np.asarray(values, dtype=np.uint64)
    return pa.array(arr, type=pa.uint64(), mask=arr == 0)


def _tags_array(values: Iterable[dict[str, str] | None]) -> pa.Array:
    return pa.array([None if t is None else _json.encode(t).decode() for t in values], type=pa.string())


def _common(spec: KindLayout, cols: list[tuple[Any, ...]], g: _Group) -> dict[str, pa.Array]:
    return {
        "ts": pa.array(cols[spec.ts], type=_TS),
        "park": pa.array(g.park, type=pa.string()),
        "gw": pa.array(g.gw, type=pa.string()),
        "dev": pa.array(cols[spec.dev], type=pa.string()),
        "lat": pa.array(cols[spec.lat], type=pa.float64()),
        "lon": pa.array(cols[spec.lon], type=pa.float64()),
        "alt_m": pa.array(cols[spec.alt_m], type=pa.float64()),
        "h3": _h3_array(g.h3),
        "tags": _tags_array(cols[spec.tags]),
    }


def _kind_table(spec: KindLayout, g: _Group) -> pa.Table:
    cols = list(zip(*g.rows, strict=True))
    data = _common(spec, cols, g)
    for column, idx in spec.columns:
        data[column.name] = pa.array(cols[idx], type=_ARROW_TYPES[column.type])
    return pa.table(data)


def _generic_table(spec: KindLayout, g: _Group) -> pa.Table:
    long = _Group()
    names: list[str] = []
    nums: list[float | None] = []
    texts: list[str | None] = []
    flags: list[bool | None] = []
    f_idx = spec.f
    for row, park, gw, h3 in zip(g.rows, g.park, g.gw, g.h3, strict=True):
        for name, value in row[f_idx].items():
            long.rows.append(row)
            long.park.append(park)
            long.gw.append(gw)
            long.h3.append(h3)
            names.append(name)
            if type(value) is bool:
                nums.append(None)
                texts.append(None)
                flags.append(value)
            elif isinstance(value, str):
                nums.append(None)
                texts.append(value)
                flags.append(None)
            else:
                nums.append(float(value))
                texts.append(None)
                flags.append(None)
    cols = list(zip(*long.rows, strict=True))
    data = _common(spec, cols, long)
    data["name"] = pa.array(names, type=pa.string())
    data["num"] = pa.array(nums, type=pa.float64())
    data["text"] = pa.array(texts, type=pa.string())
    data["flag"] = pa.array(flags, type=pa.bool_())
    return pa.table(data)


def reading_tables(parts: Iterable[Part]) -> list[tuple[str, pa.Table, bool]]:
    """Arrow tables per kind present in ``parts``, columns named as in the store.

    Each item is ``(table, data, replay)``: readings of replayed parts come in tables of their
    own, after the others, so that only they pay for deduplication.
    """
    groups: dict[tuple[bool, type[Reading]], _Group] = {}
    for part in parts:
        park, gw = part.park, part.gw
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            key = (part.replay, type(reading))
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group()
            g.rows.append(_astuple(reading))
            g.park.append(park)
            g.gw.append(gw)
            g.h3.append(h3)
    out: list[tuple[str, pa.Table, bool]] = []
    for (replay, kind), g in sorted(groups.items(), key=lambda item: item[0][0]):
        spec = KIND_LAYOUTS[kind]
        out.append((spec.name, _generic_table(spec, g) if kind is Generic else _kind_table(spec, g), replay))
    return out


def dead_letter_table(rows: list[DeadLetter]) -> pa.Table:
    return pa.table(
        {
            "ts": pa.array([r.ts_ns // 1000 for r in rows], type=pa.timestamp("us")),
            "topic": pa.array([r.topic for r in rows], type=pa.string()),
            "park": pa.array([r.park for r in rows], type=pa.string()),
            "gw": pa.array([r.gw for r in rows], type=pa.string()),
            "reason": pa.array([r.reason for r in rows], type=pa.string()),
            "raw": pa.array([r.raw for r in rows], type=pa.string()),
        }
    )


def status_table(rows: list[StatusRow]) -> pa.Table:
    def up(r: StatusRow, name: str) -> Any:
        return None if r.status.uplink is None else getattr(r.status.uplink, name)

    return pa.table(
        {
            "ts": pa.array([r.ts_ms for r in rows], type=_TS),
            "park": pa.array([r.park for r in rows], type=pa.string()),
            "gw": pa.array([r.gw for r in rows], type=pa.string()),
            "state": pa.array([r.status.state for r in rows], type=pa.string()),
            "agent_version": pa.array([r.status.agent_version for r in rows], type=pa.string()),
            "config_hash": pa.array([r.status.config_hash for r in rows], type=pa.string()),
            "backlog": pa.array([r.status.backlog for r in rows], type=pa.int64()),
            "dropped": pa.array([r.status.dropped for r in rows], type=pa.int64()),
            "unconfirmed": pa.array([r.status.unconfirmed for r in rows], type=pa.int64()),
            "expired": pa.array([r.status.expired for r in rows], type=pa.int64()),
            "buffer_pct": pa.array([r.status.buffer_pct for r in rows], type=pa.float64()),
            "uplink_operator": pa.array([up(r, "operator") for r in rows], type=pa.string()),
            "uplink_tech": pa.array([up(r, "tech") for r in rows], type=pa.string()),
            "uplink_rsrp_dbm": pa.array([up(r, "rsrp_dbm") for r in rows], type=pa.float64()),
            "uplink_sinr_db": pa.array([up(r, "sinr_db") for r in rows], type=pa.float64()),
            "config_error": pa.array([r.status.config_error for r in rows], type=pa.string()),
        }
    )


def ledger_table(rows: list[LedgerRow]) -> pa.Table:
    return pa.table(
        {
            "ts": pa.array([r.ts_ms for r in rows], type=_TS),
            "park": pa.array([r.park for r in rows], type=pa.string()),
            "gw": pa.array([r.gw for r in rows], type=pa.string()),
            "received": pa.array([r.received for r in rows], type=pa.int64()),
            "missing": pa.array([r.missing for r in rows], type=pa.int64()),
            "duplicated": pa.array([r.duplicated for r in rows], type=pa.int64()),
            "late": pa.array([r.late for r in rows], type=pa.int64()),
            "last_seq": pa.array([r.last_seq for r in rows], type=pa.int64()),
            "ingester": pa.array([r.ingester or None for r in rows], type=pa.string()),
            "restarts": pa.array([r.restarts for r in rows], type=pa.int64()),
        }
    )


def batch_tables(batch: WriteBatch) -> list[tuple[str, pa.Table, bool]]:
    """Every table a write batch touches as ``(table, data, replay)``, readings first."""
    out = reading_tables(batch.parts)
    if batch.dead_letters:
        out.append((DEAD_LETTER, dead_letter_table(batch.dead_letters), False))
    if batch.statuses:
        out.append((GATEWAY_STATUS, status_table(batch.statuses), False))
    if batch.ledger:
        out.append((LOSS_LEDGER, ledger_table(batch.ledger), False))
    return out
