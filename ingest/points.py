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
_PREFIX_CACHE_MAX: Final = 200_000


def truncate_raw(raw: bytes) -> str:
    """The raw bytes of a rejected message, cut to the contract's dead-letter limit, as text."""
    return raw[:MAX_DEAD_LETTER_RAW_BYTES].decode("utf-8", errors="replace")


class LineEncoder:
    """Readings to lines. Series repeat (bounded cardinality), so the escaped
    ``measurement,tags`` prefix of each series is built once and cached."""

    def __init__(self) -> None:
        self._prefixes: dict[tuple[Any, ...], str] = {}

    def _prefix(
        self,
        key: tuple[Any, ...],
        spec: KindLayout,
        part: Part,
        row: tuple[Any, ...],
        h3: int,
        name: str | None,
    ) -> str:
        tags: list[tuple[str, str]] = [("dev", row[spec.dev]), ("gw", part.gw), ("park", part.park)]
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

    def lines(self, part: Part, reading: Reading, h3: int) -> list[str]:
        """The line(s) of one reading (several for ``generic``: one per named value).

        Raises:
            LineProtocolError: a tag value that InfluxDB cannot store exactly.
        """
        spec = KIND_LAYOUTS[type(reading)]
        row = _astuple(reading)
        own = row[spec.tags]
        base_key = (
            spec.name,
            part.park,
            part.gw,
            row[spec.dev],
            h3,
            *[row[idx] for _, idx in spec.dims],
            tuple(own.items()) if own else None,
        )
        ts = f" {row[spec.ts]}000000"
        fields = [f"{key}{fmt(row[idx])}" for key, idx, fmt in _FIELDS[type(reading)] if row[idx] is not None]
        if type(reading) is Generic:
            out = []
            for name, value in reading.f.items():
                key = (*base_key, name)
                prefix = self._prefixes.get(key) or self._prefix(key, spec, part, row, h3, name)
                if type(value) is bool:
                    vf = f"flag={_fmt_bool(value)}"
                elif isinstance(value, str):
                    vf = f"text={quote_string(value)}"
                else:
                    vf = f"num={_fmt_float(value)}"
                out.append(f"{prefix} {','.join([*fields, vf])}{ts}")
            return out
        prefix = self._prefixes.get(base_key) or self._prefix(base_key, spec, part, row, h3, None)
        if not fields:
            # A reading with only its identity still marks that the device reported.
            fields.append("present=true")
        return [f"{prefix} {','.join(fields)}{ts}"]


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
    lines_of = (encoder or _default_encoder).lines
    lines: list[str] = []
    rejected: list[DeadLetter] = []
    readings = 0
    seq = 0
    for part in batch.parts:
        topic = f"{part.park}/{part.gw}"
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            try:
                out = lines_of(part, reading, h3)
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
            lines.extend(out)
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
