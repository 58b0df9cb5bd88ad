"""Pure conversion of a write batch into InfluxDB line protocol (layout of :mod:`storage.schema`).

Tags: ``park``, ``gw``, ``dev``, ``h3`` (hex string), the kind's dimensions and the reading's own
tags, sorted by key (InfluxDB's preferred order). Every other value is a field: coordinates,
floats (always written as floats), integers (``i``), strings and booleans. Timestamps are
nanoseconds. A reading that line protocol cannot carry exactly comes back as a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import h3 as h3lib
import msgspec

from contract.limits import MAX_DEAD_LETTER_RAW_BYTES
from contract.readings import Generic, Reading
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch
from storage.lineprotocol import FieldValue, LineProtocolError, encode_point, escape_key, quote_string
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_LAYOUTS, LOSS_LEDGER, KindLayout

_astuple = msgspec.structs.astuple
_json = msgspec.json.Encoder()
_MS_TO_NS: Final = 1_000_000


def _fmt_float(value: Any) -> str:
    # Contract ranges exclude NaN/inf; ``float()`` turns a JSON integer into ``1.0``, never ``1``.
    return repr(float(value))


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


_FIELD_FSTRING: Final[dict[str, str]] = {
    "float": "{v!r}",  # the contract decoder gives float fields floats (a JSON 1 becomes 1.0)
    "int": "{v}i",
    "str": "{_quote(v)}",
    "bool": "{'true' if v else 'false'}",
}
"""f-string formatting of a field value ``v`` of each stored type (as ``_FORMATTERS``)."""


def _kind_line_source(layout: KindLayout) -> str:
    """Source of ``line(r, park, gw, h3)``: the line of one reading of a non-generic kind.

    Generated once per kind and encoder, as :mod:`dataclasses` generates ``__init__``: one
    local per value, one ``if`` and one f-string per optional field run about twice as fast
    as a loop over (index, formatter) pairs, and this is the ingester's hottest code. The series
    prefix comes from the encoder's cache (``_prefixes``), keyed by everything in the tags.
    """
    fields = [("lat", "float"), ("lon", "float"), ("alt_m", "float")] + [
        (c.name, c.type) for c, _ in layout.columns if not c.dimension
    ]
    dims = "".join(f"r.{name}, " for name, _ in layout.dims)
    body = [
        "def line(r, park, gw, h3):",
        "    tags = r.tags",
        f"    key = ({layout.name!r}, park, gw, r.dev, h3, {dims}tuple(tags.items()) if tags else None)",
        "    prefix = _prefixes.get(key)",
        "    if prefix is None:",
        "        prefix = _make_prefix(key, r, park, gw, h3, None)",
        "    out = []",
    ]
    for name, typ in fields:
        text = escape_key(name).replace("{", "{{").replace("}", "}}") + "=" + _FIELD_FSTRING[typ]
        body += [f"    v = r.{name}", "    if v is not None:", f"        out.append(f{text!r})"]
    body += [
        "    if out:",
        "        return f\"{prefix} {','.join(out)} {r.ts}000000\"",
        # A reading with only its identity still marks that the device reported.
        "    return f'{prefix} present=true {r.ts}000000'",
    ]
    return "\n".join(body)


class LineEncoder:
    """Readings to lines. Series repeat (bounded cardinality), so the escaped
    ``measurement,tags`` prefix of each series is built once and cached."""

    def __init__(self) -> None:
        self._prefixes: dict[tuple[Any, ...], str] = {}
        namespace: dict[str, Any] = {
            "_quote": quote_string,
            "_prefixes": self._prefixes,
            "_make_prefix": self._prefix,
        }
        self._line: dict[type[Reading], Callable[[Reading, str, str, int], str]] = {}
        for kind, layout in KIND_LAYOUTS.items():
            if kind is not Generic:
                exec(_kind_line_source(layout), namespace)  # source built from the schema only
                self._line[kind] = namespace.pop("line")

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
            self._prefixes.clear()  # in place: the generated functions hold this dict
        self._prefixes[key] = prefix
        return prefix

    def _generic_lines(self, part: Part, reading: Generic, h3: int) -> list[str]:
        spec = KIND_LAYOUTS[Generic]
        row = _astuple(reading)
        own = row[spec.tags]
        base_key = ("generic", part.park, part.gw, row[spec.dev], h3, tuple(own.items()) if own else None)
        ts = f" {row[spec.ts]}000000"
        fields = [f"{key}{fmt(row[idx])}" for key, idx, fmt in _FIELDS[Generic] if row[idx] is not None]
        out = []
        for name, value in reading.f.items():
            key = (*base_key, name)
            prefix = self._prefixes.get(key) or self._prefix(key, reading, part.park, part.gw, h3, name)
            if type(value) is bool:
                vf = f"flag={_fmt_bool(value)}"
            elif isinstance(value, str):
                vf = f"text={quote_string(value)}"
            else:
                vf = f"num={_fmt_float(value)}"
            out.append(f"{prefix} {','.join([*fields, vf])}{ts}")
        return out

    def lines(self, part: Part, reading: Reading, h3: int) -> list[str]:
        """The line(s) of one reading (several for ``generic``: one per named value).

        Raises:
            LineProtocolError: a tag value that InfluxDB cannot store exactly.
        """
        line = self._line.get(type(reading))
        if line is not None:
            return [line(reading, part.park, part.gw, h3)]
        assert isinstance(reading, Generic)
        return self._generic_lines(part, reading, h3)

    def extend(self, out: list[str], part: Part, reading: Reading, h3: int) -> None:
        """Append the line(s) of one reading to ``out`` (as :meth:`lines`, without a list per reading).

        Raises:
            LineProtocolError: a tag value that InfluxDB cannot store exactly; ``out`` is unchanged.
        """
        line = self._line.get(type(reading))
        if line is not None:
            out.append(line(reading, part.park, part.gw, h3))
        else:
            assert isinstance(reading, Generic)
            out.extend(self._generic_lines(part, reading, h3))


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
    extend = (encoder or _default_encoder).extend
    lines: list[str] = []
    rejected: list[DeadLetter] = []
    readings = 0
    seq = 0
    for part in batch.parts:
        topic = f"{part.park}/{part.gw}"
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            try:
                extend(lines, part, reading, h3)
            except LineProtocolError as exc:
                seq += 1
                rejected.append(
                    DeadLetter(
                        ts_ns=now_ns + seq,
                        topic=topic,
                        park=part.park,
                        gw=part.gw,
                        reason=f"not storable in InfluxDB: {exc}",
                        raw=truncate_raw(_json.encode(reading)),
                        src=src,
                    )
                )
                continue
            readings += 1
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
