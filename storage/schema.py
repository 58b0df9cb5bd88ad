"""How readings are laid out in storage, shared by the ingester (writes) and the API (reads).

Both backends hold one table (DuckDB) or measurement (InfluxDB) per reading kind, named after
the kind, plus ``dead_letter``, ``gateway_status`` and ``loss_ledger``.

Every reading row carries ``ts`` (UTC), ``park``, ``gw``, ``dev``, the optional position
(``lat``, ``lon``, ``alt_m``) and ``h3``, the H3 cell of the position at the ingester's
configured resolution (a ``UBIGINT`` in DuckDB; a hex-string tag in InfluxDB, where an H3 cell
per park is a bounded set: a few hundred tags at resolution 10). Kind-specific fields follow
with the names and units of the wire contract.

InfluxDB tags: ``park``, ``gw``, ``dev``, ``h3`` and the kind's low-cardinality string fields
(:attr:`contract.readings.Reading.DIMENSIONS`, e.g. ``operator``, ``tech``) and the reading's own
tags. Everything else, coordinates included, is a field. A point's identity is
(measurement, tag set, timestamp), so a replayed reading overwrites itself.
The ``generic`` kind is stored long: one row/point per named value, numbers as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from contract.readings import COMMON_FIELDS, KINDS, Reading

ColumnType = Literal["DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN"]
FieldType = Literal["float", "int", "str", "bool"]

_TYPE_MAP: Final[dict[type, FieldType]] = {
    msgspec.inspect.FloatType: "float",
    msgspec.inspect.IntType: "int",
    msgspec.inspect.StrType: "str",
    msgspec.inspect.LiteralType: "str",
    msgspec.inspect.BoolType: "bool",
}
SQL_TYPES: Final[dict[FieldType, ColumnType]] = {
    "float": "DOUBLE",
    "int": "BIGINT",
    "str": "VARCHAR",
    "bool": "BOOLEAN",
}

ROW_KEY: Final = ("park", "gw", "dev", "ts")
"""Common part of a reading row's identity; see :func:`row_key`."""


def row_key(kind: str) -> tuple[str, ...]:
    """Columns that identify one reading of ``kind``: a rewrite with the same key replaces it.

    The kind's dimensions are part of it (a scanning modem reports three operators at one
    instant), as is ``name`` in the long ``generic`` table. Same rule as InfluxDB's series key.
    """
    if kind == "generic":
        return (*ROW_KEY, "name")
    return ROW_KEY + tuple(c.name for c in KIND_COLUMNS[kind] if c.dimension)


@dataclass(frozen=True, slots=True)
class Column:
    """One kind-specific field and how it is stored."""

    name: str
    type: FieldType
    dimension: bool
    """Stored as an InfluxDB tag / filtered on in DuckDB."""

    @property
    def sql_type(self) -> ColumnType:
        return SQL_TYPES[self.type]


def _field_type(t: msgspec.inspect.Type) -> FieldType:
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        t = inner[0]
    if isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    try:
        return _TYPE_MAP[type(t)]
    except KeyError:
        raise TypeError(f"no storage type for {t!r}") from None


def kind_columns(kind: type[Reading]) -> tuple[Column, ...]:
    """The kind-specific columns of ``kind`` in contract order (empty for ``generic``)."""
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    cols = []
    for f in info.fields:
        if f.name in COMMON_FIELDS or f.name == "f":
            continue
        cols.append(Column(name=f.name, type=_field_type(f.type), dimension=f.name in kind.DIMENSIONS))
    return tuple(cols)


KIND_COLUMNS: Final[dict[str, tuple[Column, ...]]] = {name: kind_columns(k) for name, k in KINDS.items()}
"""Kind name → its kind-specific columns."""

COMMON_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "TIMESTAMP"),
    ("park", "VARCHAR"),
    ("gw", "VARCHAR"),
    ("dev", "VARCHAR"),
    ("lat", "DOUBLE"),
    ("lon", "DOUBLE"),
    ("alt_m", "DOUBLE"),
    ("h3", "UBIGINT"),
    ("tags", "VARCHAR"),
)
"""Columns every DuckDB reading table starts with; ``tags`` is a JSON object or NULL."""

GENERIC_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("name", "VARCHAR"),
    ("num", "DOUBLE"),
    ("text", "VARCHAR"),
    ("flag", "BOOLEAN"),
)
"""Value columns of the long ``generic`` table (one of num/text/flag is set per row)."""


@dataclass(frozen=True, slots=True)
class KindLayout:
    """Where each stored value of one reading kind sits in ``msgspec.structs.astuple(reading)``.

    The writers of both backends turn a reading into a tuple once (C speed) and index it; this is
    the one table of those indexes. ``f`` is the index of the ``generic`` kind's named values
    (-1 for the other kinds).
    """

    name: str
    ts: int
    dev: int
    lat: int
    lon: int
    alt_m: int
    tags: int
    f: int
    columns: tuple[tuple[Column, int], ...]
    """The kind-specific columns (:data:`KIND_COLUMNS`) with their indexes."""
    dims: tuple[tuple[str, int], ...]
    """The dimension columns' names and indexes (InfluxDB tags, part of the row key)."""


def kind_layout(kind: type[Reading]) -> KindLayout:
    """The tuple indexes of ``kind``'s stored values."""
    fields = kind.__struct_fields__
    name = kind.__struct_config__.tag
    assert isinstance(name, str)
    columns = tuple((c, fields.index(c.name)) for c in KIND_COLUMNS[name])
    return KindLayout(
        name=name,
        ts=fields.index("ts"),
        dev=fields.index("dev"),
        lat=fields.index("lat"),
        lon=fields.index("lon"),
        alt_m=fields.index("alt_m"),
        tags=fields.index("tags"),
        f=fields.index("f") if "f" in fields else -1,
        columns=columns,
        dims=tuple((c.name, i) for c, i in columns if c.dimension),
    )


KIND_LAYOUTS: Final[dict[type[Reading], KindLayout]] = {k: kind_layout(k) for k in KINDS.values()}
"""Reading class → where its stored values sit in its tuple."""

DEAD_LETTER: Final = "dead_letter"
GATEWAY_STATUS: Final = "gateway_status"
LOSS_LEDGER: Final = "loss_ledger"
