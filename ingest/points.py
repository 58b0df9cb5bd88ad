"""Pure conversion of a write batch into InfluxDB line protocol (layout of :mod:`storage.schema`).

Tags: ``park``, ``gw``, ``dev``, ``h3`` (hex string), the kind's dimensions and the reading's own
tags, sorted by key (InfluxDB's preferred order). Every other value is a field: coordinates,
floats (always written as floats), integers (``i``), strings and booleans. Timestamps are
nanoseconds. A reading that line protocol cannot carry exactly comes back as a dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from math import isfinite
from operator import attrgetter, truth
from typing import Any, Final

import h3 as h3lib
import msgspec

from contract.limits import MAX_DEAD_LETTER_RAW_BYTES
from contract.readings import Generic, Reading
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch
from storage.lineprotocol import (
    FieldValue,
    LineProtocolError,
    encode_point,
    escape_key,
    escape_measurement,
    escape_name,
    format_float,
    quote_string,
    tag_value_problem,
)
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_LAYOUTS, LOSS_LEDGER, FieldType, KindLayout

try:  # the inner loop in C (ingest/_lineformat.c), built by the install; the same in Python below
    from ingest import _lineformat
except ImportError:  # pragma: no cover - only where the install had no C compiler
    _lineformat = None  # type: ignore[assignment]

_astuple = msgspec.structs.astuple
_json = msgspec.json.Encoder()
_MS_TO_NS: Final = 1_000_000


def _fmt_float(value: Any) -> str:
    # ``float()`` turns a JSON integer into ``1.0``, never ``1``; NaN and infinities (which the
    # contract's ranges exclude) raise LineProtocolError, as encode_point does.
    return format_float(float(value))


def _fmt_int(value: Any) -> str:
    return f"{value}i"


def _fmt_bool(value: Any) -> str:
    return "true" if value else "false"


_FORMATTERS: Final[dict[str, Callable[[Any], str]]] = {
    "float": _fmt_float,
    "int": _fmt_int,
    "str": quote_string,
    "bool": _fmt_bool,
}


def _line_fields(layout: KindLayout) -> list[tuple[str, int, Callable[[Any], str]]]:
    """``(key=, tuple index, formatter)`` of every field (non-tag value) of one kind."""
    position = [("lat", layout.lat), ("lon", layout.lon), ("alt_m", layout.alt_m)]
    return [(f"{escape_key(n)}=", idx, _fmt_float) for n, idx in position] + [
        (f"{escape_key(c.name)}=", idx, _FORMATTERS[c.type]) for c, idx in layout.columns if not c.dimension
    ]


_FIELDS: Final[dict[type[Reading], list[tuple[str, int, Callable[[Any], str]]]]] = {
    k: _line_fields(layout) for k, layout in KIND_LAYOUTS.items()
}
_PREFIX_CACHE_MAX: Final = 50_000
"""Series prefixes kept: about 370 bytes each with their keys (200,000 of them: 71 MB, measured
with tracemalloc); mobile probes start a new series in every H3 cell they enter."""


def truncate_raw(raw: bytes) -> str:
    """The raw bytes of a rejected message, cut to the contract's dead-letter limit, as text."""
    return raw[:MAX_DEAD_LETTER_RAW_BYTES].decode("utf-8", errors="replace")


_FLOAT_CHARS: Final = b"0123456789.-,"
_BOOL_TEXT: Final = ("false", "true")


def _float_texts(values: Sequence[Any]) -> list[str] | None:
    """``repr`` of each float of a column; None when one is not a finite float.

    msgspec's C encoder writes a whole column about 6x faster than ``repr`` per value, with the
    same shortest round-trip digits but its own exponent notation (``1e16`` and ``0.00001`` where
    ``repr`` writes ``1e+16`` and ``1e-05``). Its text is taken when it holds only digits,
    points, signs and commas and no number starts with 5 decimal zeros: there the two agree
    exactly (the tests check every binade). Otherwise ``repr`` writes the column.
    """
    texts = _float_column(values)
    return texts[1:-1].decode().split(",") if type(texts) is bytes else texts  # type: ignore[return-value]


def _float_column(values: Sequence[Any]) -> bytes | list[str] | None:
    """:func:`_float_texts` of a column, leaving msgspec's text as the JSON array it wrote."""
    blob = _json.encode(values)
    if blob.translate(None, _FLOAT_CHARS) == b"[]" and not (
        b"[0.0000" in blob or b",0.0000" in blob or b"-0.0000" in blob
    ):
        return blob
    if all(type(v) is float and isfinite(v) for v in values):
        return list(map(repr, values))
    return None


@dataclass(frozen=True, slots=True)
class _KindSpec:
    """Where the values of one kind's readings come from: getters over the structs, and places in
    their tuples (``msgspec.structs.astuple``)."""

    name: str
    fields: tuple[tuple[str, FieldType, Callable[[Any], Any]], ...]
    """Every field (non-tag value) in line order: position, then the non-dimension columns."""
    ident: tuple[Callable[[Any], Any], ...]
    """``dev`` and the dimensions: with park, gateway, cell and tags, the identity of a series."""
    ident_names: tuple[str, ...]
    field_at: tuple[int, ...]
    """Where each of ``fields`` sits in ``msgspec.structs.astuple(reading)``."""
    ident_at: tuple[int, ...]
    tags_at: int
    ts_at: int


def _kind_spec(layout: KindLayout) -> _KindSpec:
    fields: list[tuple[str, FieldType]] = [("lat", "float"), ("lon", "float"), ("alt_m", "float")]
    fields += [(c.name, c.type) for c, _ in layout.columns if not c.dimension]
    return _KindSpec(
        name=layout.name,
        fields=tuple((name, typ, attrgetter(name)) for name, typ in fields),
        ident=tuple(map(attrgetter, ["dev", *(name for name, _ in layout.dims)])),
        ident_names=("dev", *(name for name, _ in layout.dims)),
        field_at=(layout.lat, layout.lon, layout.alt_m, *(i for c, i in layout.columns if not c.dimension)),
        ident_at=(layout.dev, *(i for _, i in layout.dims)),
        tags_at=layout.tags,
        ts_at=layout.ts,
    )


def _columns(group: list[Any]) -> list[tuple[Any, ...]]:
    """The values of a group of structs of one kind, one tuple per struct field: each struct to
    a tuple, then transposed by ``zip`` (both in C; cheaper than a getter per field and value)."""
    return list(zip(*map(_astuple, group), strict=True))


_SPECS: Final[dict[type[Reading], _KindSpec]] = {
    kind: _kind_spec(layout) for kind, layout in KIND_LAYOUTS.items() if kind is not Generic
}


_TagColumn = tuple[str, list[str]]
"""A tag key and the escaped value of each row ("" where the row has no such tag)."""
_FieldColumn = tuple[str, FieldType, Sequence[Any]]
"""A field key, its type and the value of each row (None where the row has no such field)."""

_get_dev = attrgetter("dev")
_get_tags = attrgetter("tags")
_get_ts = attrgetter("ts")
_get_f = attrgetter("f")
_GENERIC_POSITION: Final = tuple((name, attrgetter(name)) for name in ("lat", "lon", "alt_m"))


def _picked(column: Sequence[Any], picks: list[int]) -> list[Any]:
    return list(map(column.__getitem__, picks))


def _template(head: str, tag_keys: tuple[str, ...], fields: tuple[tuple[str, FieldType], ...]) -> str:
    """``"head,key=%s,... key=%s,key=%si,... %s"``: the tag values, field texts and timestamp (ns)
    of one line. ``head`` "%s" takes a whole escaped ``measurement,tags`` prefix instead."""
    if head != "%s":
        tags = "".join(f",{escape_name('tag key', k).replace('%', '%%')}=%s" for k in tag_keys)
        head = escape_measurement(head).replace("%", "%%") + tags
    texts = [
        escape_key(name).replace("%", "%%") + ("=%si" if typ == "int" else "=%s") for name, typ in fields
    ]
    # A reading with only its identity still marks that the device reported.
    return head + " " + (",".join(texts) or "present=true") + " %s"


_SLOT_RE: Final = re.compile(r"([^%]*)(%s|%%|$)")


def _pieces(fmt: str) -> tuple[str, ...]:
    """The literal text around the ``%s`` slots of a template (``%%`` read as ``%``)."""
    pieces = [""]
    for text, mark in _SLOT_RE.findall(fmt):
        pieces[-1] += text
        if mark == "%s":
            pieces.append("")
        elif mark == "%%":
            pieces[-1] += "%"
    return tuple(pieces)


def _slot_kinds(n_tags: int, field_types: list[FieldType]) -> bytes:
    """:func:`ingest._lineformat.format_rows`'s kind of each slot: tag texts, the fields (floats
    and booleans come as their texts, strings are quoted by it), then the timestamp."""
    return b"t" * n_tags + b"".join(_SLOT_KIND[t] for t in field_types) + b"i"


_SLOT_KIND: Final[dict[str, bytes]] = {"float": b"t", "int": b"i", "str": b"q", "bool": b"t"}


class LineEncoder:
    """Readings to lines, a whole write batch at once.

    The readings of a batch are grouped by kind and formatted column by column, without a Python
    call per reading: each value is taken out a column at a time (``map`` over attribute
    getters, in C); tag values are escaped through a cache (``map(dict.get)``: values repeat);
    floats are written by msgspec's encoder a whole column at a time; one ``%`` template per
    group, with a slot for every tag value, makes each line (the compiled loop of
    ``ingest/_lineformat.c`` writes the same lines, where the install built it). Rows whose tags or fields are absent
    in some rows only are split by their shape first, so that each template fits its rows.
    ``generic`` readings are flattened to one row per named value, their value in a ``flag``,
    ``text`` or ``num`` column by its type.

    Readings with tags of their own, or a tag value that has to be refused, take a slower path:
    their escaped ``measurement,tags`` prefix comes from :func:`encode_point` once per series and
    is cached. Lines come out in reading order, exactly as :func:`storage.lineprotocol.encode_point`
    writes each reading (a property test holds the two together).
    """

    def __init__(self) -> None:
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._tag_texts: dict[Any, str] = {}
        self._cells: dict[int, str] = {}
        self._templates: dict[tuple[Any, ...], str] = {}
        self._slots: dict[tuple[Any, ...], tuple[tuple[str, ...], bytes]] = {}
        """The compiled loop's template of each shape: its pieces and its kinds of slot."""
        self._reset_texts()

    def _reset_texts(self) -> None:
        # None and "" are no tag at all (encode_point leaves an empty tag value out); cell 0 is
        # no cell. Preset, so that ``map(dict.get)`` gives "" for them and None only for a miss.
        self._tag_texts.clear()
        self._tag_texts.update({None: "", "": ""})
        self._cells.clear()
        self._cells[0] = ""

    def _texts(self, column: Sequence[Any]) -> tuple[list[str | None], bool]:
        """The escaped tag value of each row ("" for none), and whether every value can be a tag
        value (where one cannot: None, and the row goes to :meth:`_keyed_lines`, which says why).

        Values repeat: their texts are cached, and looked up with ``map(dict.__getitem__)``,
        which stops at the first value not cached instead of scanning the results for misses.
        """
        cache = self._tag_texts
        try:
            return list(map(cache.__getitem__, column)), True
        except KeyError:
            pass
        if len(cache) >= _PREFIX_CACHE_MAX:
            self._reset_texts()
        storable = True
        for value in set(column).difference(cache):
            if type(value) is str and tag_value_problem(value) is None:
                cache[value] = escape_key(value)
            else:
                storable = False
        return list(map(cache.get, column)), storable

    def _cell_texts(self, cells: Sequence[int]) -> list[str]:
        cache = self._cells
        try:
            return list(map(cache.__getitem__, cells))
        except KeyError:
            pass
        if len(cache) >= _PREFIX_CACHE_MAX:
            self._reset_texts()
        for cell in set(cells).difference(cache):
            cache[cell] = h3lib.int_to_str(cell)
        return list(map(cache.__getitem__, cells))

    def _format(
        self, head: str, tags: list[_TagColumn], fields: list[_FieldColumn], ts: Sequence[int]
    ) -> list[str] | None:
        """The lines of rows given by columns (tag texts all storable); None when a float column
        holds a value that is no finite float (the caller then goes reading by reading)."""
        m = len(ts)
        # all(): a truth test per text, cheaper than comparing each with "" (no blank: no count)
        tag_blanks = [0 if all(texts) else texts.count("") for _, texts in tags]
        field_blanks = [values.count(None) for _, _, values in fields]
        if any(0 < c < m for c in tag_blanks) or any(0 < c < m for c in field_blanks):
            return self._format_shapes(head, tags, fields, ts, tag_blanks, field_blanks)
        tags = sorted(t for t, c in zip(tags, tag_blanks, strict=True) if not c)
        fields = [f for f, c in zip(fields, field_blanks, strict=True) if not c]
        # Milliseconds (integers, the contract's type) to nanoseconds by writing six zeros after
        # them (no product to make and write), except for 0 ms, which is "0" in nanoseconds too.
        ns_text = min(ts) > 0
        shape = (head, ns_text, *(key for key, _ in tags), *((key, typ) for key, typ, _ in fields))
        fmt = self._templates.get(shape)
        if fmt is None:
            fmt = self._templates[shape] = _template(
                head, tuple(key for key, _ in tags), tuple((key, typ) for key, typ, _ in fields)
            ) + ("000000" if ns_text else "")
        compiled = _lineformat is not None
        columns: list[Any] = [texts for _, texts in tags]
        for _, typ, values in fields:
            if typ == "float":  # the compiled loop takes msgspec's JSON text of a column as it is
                texts = _float_column(values) if compiled else _float_texts(values)
                if texts is None:
                    return None
                columns.append(texts)
            elif typ == "str" and not compiled:  # the compiled loop quotes strings itself
                columns.append(list(map(quote_string, values)))
            elif typ == "bool":
                columns.append(list(map(_BOOL_TEXT.__getitem__, map(truth, values))))
            else:
                columns.append(values)
        columns.append(ts if ns_text else list(map(_MS_TO_NS.__mul__, ts)))
        if compiled:
            slots = self._slots.get(shape)
            if slots is None:
                slots = self._slots[shape] = (_pieces(fmt), _slot_kinds(len(tags), [t for _, t, _ in fields]))
            return _lineformat.format_rows(*slots, columns)
        return list(map(fmt.__mod__, zip(*columns, strict=True)))

    def _format_shapes(
        self,
        head: str,
        tags: list[_TagColumn],
        fields: list[_FieldColumn],
        ts: Sequence[int],
        tag_blanks: list[int],
        field_blanks: list[int],
    ) -> list[str] | None:
        """:meth:`_format` of rows that differ in which tags and fields they have: one template
        per shape (a shape is the set of tags and fields a row has)."""
        m = len(ts)
        mixed: list[Iterator[Any]] = [
            map(bool, texts) for (_, texts), c in zip(tags, tag_blanks, strict=True) if 0 < c < m
        ]
        mixed += [map(type, v) for (_, _, v), c in zip(fields, field_blanks, strict=True) if 0 < c < m]
        shapes: dict[tuple[Any, ...], list[int]] = {}
        for j, shape in enumerate(zip(*mixed, strict=True)):
            picks = shapes.get(shape)
            if picks is None:
                shapes[shape] = [j]
            else:
                picks.append(j)
        lines: list[str] = [""] * m
        for picks in shapes.values():
            got = self._format(
                head,
                [(key, _picked(texts, picks)) for key, texts in tags],
                [(key, typ, _picked(values, picks)) for key, typ, values in fields],
                _picked(ts, picks),
            )
            if got is None:
                return None
            list(map(lines.__setitem__, picks, got))
        return lines

    def _prefix(
        self,
        key: tuple[Any, ...],
        reading: Reading,
        park: str,
        gw: str,
        h3: int,
        name: str | None,
    ) -> str:
        """The escaped ``measurement,tags`` of one series, by :func:`encode_point` (cached).

        Raises:
            LineProtocolError: a tag value that InfluxDB cannot store exactly.
        """
        spec = KIND_LAYOUTS[type(reading)]
        row = _astuple(reading)
        tags: list[tuple[str, str]] = [("dev", row[spec.dev]), ("gw", gw), ("park", park)]
        if h3:
            tags.append(("h3", h3lib.int_to_str(h3)))
        for dim, idx in spec.dims:
            if row[idx] is not None:
                tags.append((dim, row[idx]))
        if row[spec.tags]:
            tags.extend(row[spec.tags].items())
        if name is not None:
            tags.append(("name", name))
        tags.sort()
        # encode_point validates and escapes; keep everything before the field set.
        line = encode_point(spec.name, tags, [("x", True)], 0)
        prefix = line[: -len(" x=true 0")]
        if len(self._prefixes) >= _PREFIX_CACHE_MAX:
            self._prefixes.clear()
        self._prefixes[key] = prefix
        return prefix

    def _generic_lines(self, park: str, gw: str, reading: Generic, h3: int) -> list[str]:
        """The lines of one ``generic`` reading, one by one (own tags, or a value to refuse)."""
        spec = KIND_LAYOUTS[Generic]
        row = _astuple(reading)
        own = row[spec.tags]
        base_key = ("generic", park, gw, row[spec.dev], h3, tuple(own.items()) if own else None)
        ts = f" {row[spec.ts] * _MS_TO_NS}"
        fields = [f"{key}{fmt(row[idx])}" for key, idx, fmt in _FIELDS[Generic] if row[idx] is not None]
        out = []
        for name, value in reading.f.items():
            key = (*base_key, name)
            prefix = self._prefixes.get(key) or self._prefix(key, reading, park, gw, h3, name)
            if type(value) is bool:
                vf = f"flag={_fmt_bool(value)}"
            elif isinstance(value, str):
                vf = f"text={quote_string(value)}"
            else:
                vf = f"num={_fmt_float(value)}"
            out.append(f"{prefix} {','.join([*fields, vf])}{ts}")
        return out

    def _key(self, reading: Reading, park: str, gw: str, h3: int) -> tuple[Any, ...]:
        spec = _SPECS[type(reading)]
        tags = reading.tags
        return (
            spec.name,
            park,
            gw,
            h3,
            *(get(reading) for get in spec.ident),
            tuple(tags.items()) if tags else None,
        )

    def _reference_line(self, reading: Reading, park: str, gw: str, h3: int) -> str:
        """One reading's line through :func:`encode_point` (a value that is no finite float in a
        float field: only a reading built without the contract's decoder has one)."""
        key = self._key(reading, park, gw, h3)
        prefix = self._prefixes.get(key) or self._prefix(key, reading, park, gw, h3, None)
        fields: list[tuple[str, FieldValue]] = []
        for name, typ, get in _SPECS[type(reading)].fields:
            value = get(reading)
            if value is not None:
                fields.append((name, float(value) if typ == "float" else value))
        line = encode_point("x", [], fields or [("present", True)], reading.ts * _MS_TO_NS)
        return prefix + line[1:]

    def _kind_lines(
        self,
        kind: type[Reading],
        group: list[Reading],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
    ) -> list[str | None]:
        """The line of each reading of one kind (None where ``refused`` says why not)."""
        spec = _SPECS[kind]
        m = len(group)
        columns = _columns(group)
        texts = [self._texts(parks), self._texts(gws), *(self._texts(columns[i]) for i in spec.ident_at)]
        tags: list[Any] = [
            ("h3", self._cell_texts(cells)),
            *zip(("park", "gw", *spec.ident_names), (t for t, _ in texts), strict=True),
        ]
        own = columns[spec.tags_at]
        if own.count(None) != m or not all(storable for _, storable in texts):
            # Rare: tags of the readings' own, or a value to refuse: these rows take the keyed path.
            keyed = [j for j in range(m) if own[j] is not None or any(t[j] is None for _, t in tags)]
            lines: list[str | None] = [None] * m
            self._subset_lines(kind, group, parks, gws, cells, keyed, lines, refused, keyed=True)
            plain = sorted(set(range(m)).difference(keyed))
            if plain:
                self._subset_lines(kind, group, parks, gws, cells, plain, lines, refused, keyed=False)
            return lines
        fields: list[_FieldColumn] = [
            (name, typ, columns[i]) for (name, typ, _), i in zip(spec.fields, spec.field_at, strict=True)
        ]
        got = self._format(spec.name, tags, fields, columns[spec.ts_at])
        if got is None:
            return self._reference_lines(group, parks, gws, cells, refused)
        return got  # type: ignore[return-value]

    def _keyed_lines(
        self,
        kind: type[Reading],
        group: list[Reading],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
    ) -> list[str | None]:
        """:meth:`_kind_lines` of readings with tags of their own (or a tag value to refuse):
        the whole ``measurement,tags`` prefix of each series is made once and cached."""
        spec = _SPECS[kind]
        prefixes: list[str | None] = []
        for j, reading in enumerate(group):
            key = self._key(reading, parks[j], gws[j], cells[j])
            try:
                prefixes.append(
                    self._prefixes.get(key) or self._prefix(key, reading, parks[j], gws[j], cells[j], None)
                )
            except LineProtocolError as exc:
                refused[j] = exc
                prefixes.append(None)
        keep = [j for j, prefix in enumerate(prefixes) if prefix is not None]
        lines: list[str | None] = [None] * len(group)
        if not keep:
            return lines
        sub = _picked(group, keep)
        columns = _columns(sub)
        fields: list[_FieldColumn] = [
            (name, typ, columns[i]) for (name, typ, _), i in zip(spec.fields, spec.field_at, strict=True)
        ]
        got = self._format("%s", [("", _picked(prefixes, keep))], fields, columns[spec.ts_at])
        if got is None:
            sub_refused: dict[int, LineProtocolError] = {}
            got = self._reference_lines(  # type: ignore[assignment]
                sub, _picked(parks, keep), _picked(gws, keep), _picked(cells, keep), sub_refused
            )
            refused.update((keep[j], exc) for j, exc in sub_refused.items())
        list(map(lines.__setitem__, keep, got))  # type: ignore[arg-type]
        return lines

    def _subset_lines(
        self,
        kind: type[Reading],
        group: list[Reading],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        picks: list[int],
        lines: list[str | None],
        refused: dict[int, LineProtocolError],
        *,
        keyed: bool,
    ) -> None:
        """:meth:`_kind_lines` (or :meth:`_keyed_lines`) of the readings at ``picks``, written
        into ``lines`` and ``refused`` at their places in ``group``."""
        sub: dict[int, LineProtocolError] = {}
        got = (self._keyed_lines if keyed else self._kind_lines)(
            kind,
            _picked(group, picks),
            _picked(parks, picks),
            _picked(gws, picks),
            _picked(cells, picks),
            sub,
        )
        list(map(lines.__setitem__, picks, got))
        refused.update((picks[j], exc) for j, exc in sub.items())

    def _reference_lines(
        self,
        group: list[Reading],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
    ) -> list[str | None]:
        lines: list[str | None] = []
        for j, reading in enumerate(group):
            try:
                lines.append(self._reference_line(reading, parks[j], gws[j], cells[j]))
            except LineProtocolError as exc:
                refused[j] = exc
                lines.append(None)
        return lines

    def _generic_group(
        self,
        group: list[Generic],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
    ) -> list[Any]:
        """The lines of each ``generic`` reading: a line, or a list of lines (several named
        values), or None where ``refused`` says why not.

        The named values of all readings become rows of one table (a reading's columns repeated
        for each of its values), formatted like any kind with ``name`` as a tag.
        """
        m = len(group)
        fs: list[dict[str, Any]] = list(map(_get_f, group))
        lens = list(map(len, fs))
        single = lens.count(1) == m
        # Row i belongs to reading owner[i] (the identity when every reading has one value).
        owner = list(range(m)) if single else list(chain.from_iterable(map(repeat, range(m), lens)))

        def rows(column: Sequence[Any]) -> Sequence[Any]:
            return column if single else _picked(column, owner)

        texts = [self._texts(parks), self._texts(gws), self._texts(list(map(_get_dev, group)))]
        tags: list[Any] = [
            ("h3", rows(self._cell_texts(cells))),
            *zip(("park", "gw", "dev"), (rows(t) for t, _ in texts), strict=True),
        ]
        names, storable = self._texts(list(chain.from_iterable(fs)))
        tags.append(("name", names))
        own = list(map(_get_tags, group))
        if own.count(None) != m or not storable or not all(ok for _, ok in texts):
            # Rare: tags of the readings' own, or a value to refuse: these readings one by one.
            slow = {j for j in range(m) if own[j] is not None}
            for _, texts in tags:
                slow.update(owner[i] for i, text in enumerate(texts) if text is None)
            return self._generic_split(group, parks, gws, cells, refused, sorted(slow))
        values = list(chain.from_iterable(map(dict.values, fs)))
        types = list(map(type, values))
        fields: list[_FieldColumn] = [
            (name, "float", rows(list(map(get, group)))) for name, get in _GENERIC_POSITION
        ]
        if types.count(float) == len(values):
            fields.append(("num", "float", values))
        else:  # each value in the column its type calls for (numbers are stored as floats)
            fields += [
                ("flag", "bool", [v if t is bool else None for v, t in zip(values, types, strict=True)]),
                ("text", "str", [v if t is str else None for v, t in zip(values, types, strict=True)]),
                (
                    "num",
                    "float",
                    [None if t is bool or t is str else float(v) for v, t in zip(values, types, strict=True)],
                ),
            ]
        got = self._format("generic", tags, fields, rows(list(map(_get_ts, group))))
        if got is None:  # a value that is no finite float: those readings are refused one by one
            return self._generic_split(group, parks, gws, cells, refused, list(range(m)))
        if single:
            return got
        lines = iter(got)
        return [list(islice(lines, k)) for k in lens]

    def _generic_split(
        self,
        group: list[Generic],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
        slow: list[int],
    ) -> list[Any]:
        """:meth:`_generic_group` with the readings at ``slow`` encoded one by one."""
        out: list[Any] = [None] * len(group)
        for j in slow:
            try:
                out[j] = self._generic_lines(parks[j], gws[j], group[j], cells[j])
            except LineProtocolError as exc:
                refused[j] = exc
        fast = sorted(set(range(len(group))).difference(slow))
        if fast:
            sub: dict[int, LineProtocolError] = {}
            got = self._generic_group(
                _picked(group, fast), _picked(parks, fast), _picked(gws, fast), _picked(cells, fast), sub
            )
            list(map(out.__setitem__, fast, got))
            refused.update((fast[j], exc) for j, exc in sub.items())
        return out

    def encode(
        self, parts: Sequence[Part]
    ) -> tuple[list[str], int, list[tuple[Part, Reading, LineProtocolError]]]:
        """The lines of every reading of ``parts``, in order; how many readings they hold; the
        readings that line protocol cannot carry (with their part and the reason)."""
        readings: list[Reading] = []
        cells: list[int] = []
        parks: list[str] = []
        gws: list[str] = []
        owner: list[int] = []
        for p, part in enumerate(parts):
            k = len(part.readings)
            readings += part.readings
            cells += part.h3
            parks += repeat(part.park, k)
            gws += repeat(part.gw, k)
            owner += repeat(p, k)
        n = len(readings)
        if not n:
            return [], 0, []
        kinds = list(map(type, readings))
        by_kind: dict[type[Reading], list[int]] = {}
        if kinds.count(kinds[0]) == n:
            by_kind[kinds[0]] = list(range(n))
        else:
            for i, kind in enumerate(kinds):
                members = by_kind.get(kind)
                if members is None:
                    by_kind[kind] = [i]
                else:
                    members.append(i)
        slots: list[Any] = [None] * n
        failed: dict[int, LineProtocolError] = {}
        flat = True  # every slot holds one line (or None)
        for kind, members in by_kind.items():
            whole = len(members) == n
            refused: dict[int, LineProtocolError] = {}
            args = (
                readings if whole else _picked(readings, members),
                parks if whole else _picked(parks, members),
                gws if whole else _picked(gws, members),
                cells if whole else _picked(cells, members),
                refused,
            )
            if kind is Generic:
                lines: list[Any] = self._generic_group(*args)  # type: ignore[arg-type]
                flat = flat and not any(type(line) is list for line in lines)
            else:
                lines = self._kind_lines(kind, *args)
            if whole and not refused:
                slots = lines
            else:
                list(map(slots.__setitem__, members, lines))
                failed.update((members[j], exc) for j, exc in refused.items())
        out: list[str]
        if not flat:
            out = []
            for slot in slots:
                if type(slot) is str:
                    out.append(slot)
                elif slot is not None:
                    out += slot
        elif failed:
            out = [slot for slot in slots if slot is not None]
        else:
            out = slots
        problems = [(parts[owner[i]], readings[i], failed[i]) for i in sorted(failed)]
        return out, n - len(failed), problems

    def lines(self, part: Part, reading: Reading, h3: int) -> list[str]:
        """The line(s) of one reading (several for ``generic``: one per named value).

        Raises:
            LineProtocolError: a tag value that InfluxDB cannot store exactly.
        """
        one = Part(park=part.park, gw=part.gw, readings=[reading], h3=[h3])  # type: ignore[list-item]
        lines, _, problems = self.encode([one])
        if problems:
            raise problems[0][2]
        return lines


_default_encoder = LineEncoder()


def reading_lines(part: Part, reading: Reading, h3: int) -> list[str]:
    """The line(s) of one reading with a process-wide prefix cache (see :class:`LineEncoder`)."""
    return _default_encoder.lines(part, reading, h3)


def dead_letter_line(d: DeadLetter) -> str:
    return encode_point(
        DEAD_LETTER,
        [("gw", d.gw), ("park", d.park), ("src", d.src)],
        [("topic", d.topic), ("reason", d.reason), ("raw", d.raw)],
        d.ts_ns,
    )


def status_line(s: StatusRow) -> str:
    st = s.status
    fields: list[tuple[str, FieldValue]] = [("state", st.state)]
    for name in (
        "agent_version",
        "config_hash",
        "backlog",
        "dropped",
        "unconfirmed",
        "expired",
        "config_error",
    ):
        value = getattr(st, name)
        if value is not None:
            fields.append((name, value))
    if st.buffer_pct is not None:
        fields.append(("buffer_pct", float(st.buffer_pct)))
    if st.uplink is not None:
        for name in ("operator", "tech"):
            value = getattr(st.uplink, name)
            if value is not None:
                fields.append((f"uplink_{name}", value))
        for name in ("rsrp_dbm", "sinr_db"):
            value = getattr(st.uplink, name)
            if value is not None:
                fields.append((f"uplink_{name}", float(value)))
    return encode_point(GATEWAY_STATUS, [("gw", s.gw), ("park", s.park)], fields, s.ts_ms * _MS_TO_NS)


def ledger_line(r: LedgerRow) -> str:
    return encode_point(
        LOSS_LEDGER,
        [("gw", r.gw), ("park", r.park), *([("ingester", r.ingester)] if r.ingester else [])],
        [
            ("received", r.received),
            ("missing", r.missing),
            ("duplicated", r.duplicated),
            ("late", r.late),
            ("last_seq", r.last_seq),
            ("restarts", r.restarts),
        ],
        r.ts_ms * _MS_TO_NS,
    )


@dataclass(slots=True)
class Encoded:
    """The lines of a batch, how many readings they hold, and the readings that became dead letters."""

    lines: list[str]
    readings: int
    rejected: list[DeadLetter]


def encode_batch(batch: WriteBatch, *, src: str, now_ns: int, encoder: LineEncoder | None = None) -> Encoded:
    """Encode a whole batch; readings and statuses that cannot be encoded become dead letters
    (in ``rejected``).

    Raises:
        LineProtocolError: a dead-letter or ledger row that line protocol cannot carry.
    """
    lines, readings, refused = (encoder or _default_encoder).encode(batch.parts)
    rejected: list[DeadLetter] = []
    seq = 0
    for part, reading, exc in refused:
        seq += 1
        rejected.append(
            DeadLetter(
                ts_ns=now_ns + seq,
                topic=f"{part.park}/{part.gw}",
                park=part.park,
                gw=part.gw,
                reason=f"not storable in InfluxDB: {exc}",
                raw=truncate_raw(_json.encode(reading)),
                src=src,
            )
        )
    for d in [*batch.dead_letters, *rejected]:
        lines.append(dead_letter_line(d))
    for s in batch.statuses:
        try:
            lines.append(status_line(s))
        except LineProtocolError as exc:
            seq += 1
            dead = DeadLetter(
                ts_ns=now_ns + seq,
                topic=f"{s.park}/{s.gw}",
                park=s.park,
                gw=s.gw,
                reason=f"status not storable in InfluxDB: {exc}",
                raw=truncate_raw(_json.encode(s.status)),
                src=src,
            )
            rejected.append(dead)
            lines.append(dead_letter_line(dead))
    for r in batch.ledger:
        lines.append(ledger_line(r))
    return Encoded(lines=lines, readings=readings, rejected=rejected)
