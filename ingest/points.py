"""Pure conversion of a write batch into InfluxDB line protocol (layout of :mod:`storage.schema`).

Tags: ``park``, ``gw``, ``dev``, ``h3`` (hex string), the kind's dimensions and the reading's own
tags, sorted by key (InfluxDB's preferred order). Every other value is a field: coordinates,
floats (always written as floats), integers (``i``), strings and booleans. Timestamps are
nanoseconds. A reading that line protocol cannot carry exactly comes back as a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
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


def _float_texts(values: list[Any]) -> list[str] | None:
    """``repr`` of each float of a column; None when one is not a finite float.

    msgspec's C encoder writes a whole column about 6x faster than ``repr`` per value, with the
    same shortest round-trip digits but its own exponent notation (``1e16`` and ``0.00001`` where
    ``repr`` writes ``1e+16`` and ``1e-05``). Its text is taken when it holds only digits,
    points, signs and commas and no number starts with 5 decimal zeros: there the two agree
    exactly (the tests check every binade). Otherwise ``repr`` writes the column.
    """
    blob = _json.encode(values)
    if blob.translate(None, _FLOAT_CHARS) == b"[]" and not (
        b"[0.0000" in blob or b",0.0000" in blob or b"-0.0000" in blob
    ):
        return blob[1:-1].decode().split(",")
    if all(type(v) is float and isfinite(v) for v in values):
        return list(map(repr, values))
    return None


@dataclass(frozen=True, slots=True)
class _KindSpec:
    """Where the values of one kind's readings come from, as getters over the structs."""

    name: str
    fields: tuple[tuple[str, FieldType, Callable[[Any], Any]], ...]
    """Every field (non-tag value) in line order: position, then the non-dimension columns."""
    ident: tuple[Callable[[Any], Any], ...]
    """``dev`` and the dimensions: with park, gateway, cell and tags, the identity of a series."""
    ident_names: tuple[str, ...]
    tags: Callable[[Any], Any]
    ts: Callable[[Any], Any]


def _kind_spec(layout: KindLayout) -> _KindSpec:
    fields: list[tuple[str, FieldType]] = [("lat", "float"), ("lon", "float"), ("alt_m", "float")]
    fields += [(c.name, c.type) for c, _ in layout.columns if not c.dimension]
    return _KindSpec(
        name=layout.name,
        fields=tuple((name, typ, attrgetter(name)) for name, typ in fields),
        ident=tuple(map(attrgetter, ["dev", *(name for name, _ in layout.dims)])),
        ident_names=("dev", *(name for name, _ in layout.dims)),
        tags=attrgetter("tags"),
        ts=attrgetter("ts"),
    )


_SPECS: Final[dict[type[Reading], _KindSpec]] = {
    kind: _kind_spec(layout) for kind, layout in KIND_LAYOUTS.items() if kind is not Generic
}


def _line_format(spec: _KindSpec, present: tuple[bool, ...]) -> str:
    """``"%s key=%s,key=%si,... %s"``: prefix, the present fields' texts, timestamp (ns)."""
    texts = [
        escape_key(name).replace("%", "%%") + ("=%si" if typ == "int" else "=%s")
        for (name, typ, _), here in zip(spec.fields, present, strict=True)
        if here
    ]
    # A reading with only its identity still marks that the device reported.
    return "%s " + (",".join(texts) or "present=true") + " %s"


def _prefix_format(spec: _KindSpec, shape: tuple[Any, ...]) -> tuple[str, tuple[int, ...]]:
    """The format of the prefix of a series of ``shape`` (kind, has a cell, which of dev and the
    dimensions are set) and, in tag key order, the position of each value in
    ``(park, gw, dev, dims..., h3)``."""
    names = ["park", "gw", *spec.ident_names, "h3"]
    present = [True, True, *shape[2:], shape[1]]
    order = sorted((name, i) for i, (name, here) in enumerate(zip(names, present, strict=True)) if here)
    head = escape_measurement(spec.name).replace("%", "%%")
    tags = "".join(f",{escape_name('tag key', name).replace('%', '%%')}=%s" for name, _ in order)
    return head + tags, tuple(i for _, i in order)


class LineEncoder:
    """Readings to lines, a whole write batch at once.

    The readings of a batch are grouped by kind and by the set of fields they carry (a device
    sends the same fields every time, so groups are large), and each group is formatted column by
    column: its values are taken out a column at a time (``map`` over attribute getters, in C),
    floats are written by msgspec's encoder a whole column at a time, one ``%`` template per group
    makes each line, and the escaped ``measurement,tags`` prefix of each series is built once and
    cached (series repeat: bounded cardinality). Lines come out in reading order, exactly as
    :func:`storage.lineprotocol.encode_point` writes each reading (a property test holds the
    two together).
    """

    def __init__(self) -> None:
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._tag_texts: dict[Any, str] = {}
        self._cells: dict[int, str] = {}
        self._prefix_formats: dict[tuple[Any, ...], tuple[str, tuple[int, ...]]] = {}
        self._formats: dict[tuple[type[Reading], tuple[bool, ...]], str] = {}

    def _prefix(
        self,
        key: tuple[Any, ...],
        reading: Reading,
        park: str,
        gw: str,
        h3: int,
        name: str | None,
    ) -> str:
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

    def _escaped(self, value: Any) -> str | None:
        """A tag value escaped, or None when it is empty or not storable (then the general path
        leaves it out or names the problem). Tag values repeat: cached."""
        text = self._tag_texts.get(value)
        if text is None:
            if type(value) is not str or not value or tag_value_problem(value) is not None:
                return None
            if len(self._tag_texts) >= _PREFIX_CACHE_MAX:
                self._tag_texts.clear()
            text = self._tag_texts[value] = escape_key(value)
        return text

    def _series_prefix(self, spec: _KindSpec, key: tuple[Any, ...], reading: Reading) -> str:
        """The prefix of a series not in the cache (key: kind, park, gw, h3, dev, dims..., tags).

        Without the reading's own tags the tag keys and their order are known per kind, cell and
        present dimensions: the escaped values go into a format made once. Anything else (own
        tags, a value to refuse or leave out) goes through :func:`encode_point`.
        """
        _, park, gw, h3, *ident, own = key
        if own is None:
            texts = [self._escaped(v) if v is not None else "" for v in (park, gw, *ident)]
            if None not in texts:
                shape = (spec.name, h3 != 0, *(v is not None for v in ident))
                found = self._prefix_formats.get(shape)
                if found is None:
                    found = self._prefix_formats[shape] = _prefix_format(spec, shape)
                fmt, order = found
                if h3:
                    cell = self._cells.get(h3)
                    if cell is None:
                        if len(self._cells) >= _PREFIX_CACHE_MAX:
                            self._cells.clear()
                        cell = self._cells[h3] = h3lib.int_to_str(h3)
                    texts.append(cell)
                prefix = fmt % tuple(map(texts.__getitem__, order))
                if len(self._prefixes) >= _PREFIX_CACHE_MAX:
                    self._prefixes.clear()
                self._prefixes[key] = prefix
                return prefix
        return self._prefix(key, reading, park, gw, h3, None)

    def _generic_lines(self, park: str, gw: str, reading: Generic, h3: int) -> list[str]:
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
        values = [list(map(get, group)) for _, _, get in spec.fields]
        counts = [column.count(None) for column in values]
        if any(0 < c < m for c in counts):
            return self._split_lines(kind, group, values, parks, gws, cells, refused)
        tags = list(map(spec.tags, group))
        tag_keys: Any = repeat(None)
        if tags.count(None) != m:
            tag_keys = [tuple(t.items()) if t else None for t in tags]
        present = tuple(c == 0 for c in counts)
        fmt = self._formats.get((kind, present))
        if fmt is None:
            fmt = self._formats[(kind, present)] = _line_format(spec, present)
        keys = list(
            zip(repeat(spec.name), parks, gws, cells, *(map(get, group) for get in spec.ident), tag_keys)
        )
        prefixes: list[str | None] = list(map(self._prefixes.get, keys))
        if None in prefixes:
            bad = []
            for j, prefix in enumerate(prefixes):
                if prefix is None:
                    try:
                        prefixes[j] = self._series_prefix(spec, keys[j], group[j])
                    except LineProtocolError as exc:
                        refused[j] = exc
                        bad.append(j)
            if bad:  # rare: a tag value InfluxDB cannot hold; the others are formatted alone
                keep = [j for j in range(m) if j not in refused]
                lines: list[str | None] = [None] * m
                if keep:
                    self._subset_lines(kind, group, parks, gws, cells, keep, lines, refused)
                return lines
        columns: list[Any] = [prefixes]
        for (_, typ, _), column, here in zip(spec.fields, values, present, strict=True):
            if not here:
                continue
            if typ == "float":
                texts = _float_texts(column)
                if texts is None:
                    return self._reference_lines(group, parks, gws, cells, refused)
                columns.append(texts)
            elif typ == "str":
                columns.append(list(map(quote_string, column)))
            elif typ == "bool":
                columns.append(list(map(_BOOL_TEXT.__getitem__, map(truth, column))))
            else:
                columns.append(column)
        columns.append(list(map(_MS_TO_NS.__mul__, map(spec.ts, group))))
        return list(map(fmt.__mod__, zip(*columns, strict=True)))

    def _split_lines(
        self,
        kind: type[Reading],
        group: list[Reading],
        values: list[list[Any]],
        parks: list[str],
        gws: list[str],
        cells: list[int],
        refused: dict[int, LineProtocolError],
    ) -> list[str | None]:
        """:meth:`_kind_lines` for a group whose readings carry different sets of fields: one
        sub-group per set."""
        signatures = list(zip(*(map(type, column) for column in values), strict=True))
        subgroups: dict[tuple[type, ...], list[int]] = {}
        for j, signature in enumerate(signatures):
            subgroups.setdefault(signature, []).append(j)
        lines: list[str | None] = [None] * len(group)
        for picks in subgroups.values():
            self._subset_lines(kind, group, parks, gws, cells, picks, lines, refused)
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
    ) -> None:
        """:meth:`_kind_lines` of the readings at ``picks``, written into ``lines`` and
        ``refused`` at their places in ``group``."""
        sub: dict[int, LineProtocolError] = {}
        got = self._kind_lines(
            kind,
            [group[j] for j in picks],
            [parks[j] for j in picks],
            [gws[j] for j in picks],
            [cells[j] for j in picks],
            sub,
        )
        for j, line in zip(picks, got, strict=True):
            lines[j] = line
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
        generic = by_kind.pop(Generic, None)
        for i in generic or ():
            try:
                slots[i] = self._generic_lines(parks[i], gws[i], readings[i], cells[i])  # type: ignore[arg-type]
            except LineProtocolError as exc:
                failed[i] = exc
        for kind, members in by_kind.items():
            whole = len(members) == n
            refused: dict[int, LineProtocolError] = {}
            lines = self._kind_lines(
                kind,
                readings if whole else list(map(readings.__getitem__, members)),
                parks if whole else list(map(parks.__getitem__, members)),
                gws if whole else list(map(gws.__getitem__, members)),
                cells if whole else list(map(cells.__getitem__, members)),
                refused,
            )
            if whole and not refused:
                slots = lines
            else:
                list(map(slots.__setitem__, members, lines))
                failed.update((members[j], exc) for j, exc in refused.items())
        out: list[str]
        if generic:
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
