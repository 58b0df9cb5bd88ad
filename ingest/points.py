"""Pure conversion of a write batch into InfluxDB line protocol (layout of :mod:`storage.schema`).

Tags: ``park``, ``gw``, ``dev``, ``h3`` (hex string), the kind's dimensions and the reading's own
tags, sorted by key (InfluxDB's preferred order). Every other value is a field: coordinates,
floats (always written as floats), integers (``i``), strings and booleans. Timestamps are
nanoseconds. A reading that line protocol cannot carry exactly comes back as a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import h3 as h3lib
import msgspec

from contract.limits import MAX_DEAD_LETTER_RAW_BYTES
from contract.readings import KINDS, Generic, Reading
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch
from storage.lineprotocol import FieldValue, LineProtocolError, encode_point
from storage.schema import DEAD_LETTER, GATEWAY_STATUS, KIND_COLUMNS, LOSS_LEDGER

_astuple = msgspec.structs.astuple
_json = msgspec.json.Encoder()
_MS_TO_NS: Final = 1_000_000


class _KindSpec:
    def __init__(self, kind: type[Reading]) -> None:
        fields = kind.__struct_fields__
        name = kind.__struct_config__.tag
        assert isinstance(name, str)
        self.name = name
        self.ts = fields.index("ts")
        self.dev = fields.index("dev")
        self.tags = fields.index("tags")
        self.position = [(n, fields.index(n)) for n in ("lat", "lon", "alt_m")]
        self.dims = [(c.name, fields.index(c.name)) for c in KIND_COLUMNS[name] if c.dimension]
        self.fields = [(c.name, fields.index(c.name), c.type) for c in KIND_COLUMNS[name] if not c.dimension]


_SPECS: Final[dict[type[Reading], _KindSpec]] = {k: _KindSpec(k) for k in KINDS.values()}


def truncate_raw(raw: bytes) -> str:
    """The raw bytes of a rejected message, cut to the contract's dead-letter limit, as text."""
    return raw[:MAX_DEAD_LETTER_RAW_BYTES].decode("utf-8", errors="replace")


def _typed(value: Any, typ: str) -> FieldValue:
    if typ == "float":
        return float(value)
    return value  # type: ignore[no-any-return]


def reading_lines(part: Part, reading: Reading, h3: int) -> list[str]:
    """The line(s) of one reading (several for ``generic``: one per named value).

    Raises:
        LineProtocolError: a tag value that InfluxDB cannot store exactly.
    """
    spec = _SPECS[type(reading)]
    row = _astuple(reading)
    tags: list[tuple[str, str]] = [("dev", row[spec.dev]), ("gw", part.gw), ("park", part.park)]
    if h3:
        tags.append(("h3", h3lib.int_to_str(h3)))
    for name, idx in spec.dims:
        value = row[idx]
        if value is not None:
            tags.append((name, value))
    own = row[spec.tags]
    if own:
        tags.extend(own.items())
    tags.sort()
    fields: list[tuple[str, FieldValue]] = [
        (n, float(row[i])) for n, i in spec.position if row[i] is not None
    ]
    ts_ns = row[spec.ts] * _MS_TO_NS
    if type(reading) is Generic:
        lines = []
        for name, value in reading.f.items():
            if type(value) is bool:
                vf: list[tuple[str, FieldValue]] = [("flag", value)]
            elif isinstance(value, str):
                vf = [("text", value)]
            else:
                vf = [("num", float(value))]
            named = sorted([*tags, ("name", name)])
            lines.append(encode_point(spec.name, named, [*fields, *vf], ts_ns))
        return lines
    for name, idx, typ in spec.fields:
        value = row[idx]
        if value is not None:
            fields.append((name, _typed(value, typ)))
    if not fields:
        # A reading with only its identity still marks that the device reported.
        fields.append(("present", True))
    return [encode_point(spec.name, tags, fields, ts_ns)]


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
    for name in ("agent_version", "config_hash", "backlog", "dropped", "config_error"):
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
        [("gw", r.gw), ("park", r.park)],
        [
            ("received", r.received),
            ("missing", r.missing),
            ("duplicated", r.duplicated),
            ("late", r.late),
            ("last_seq", r.last_seq),
        ],
        r.ts_ms * _MS_TO_NS,
    )


@dataclass(slots=True)
class Encoded:
    """The lines of a batch, how many readings they hold, and the readings that became dead letters."""

    lines: list[str]
    readings: int
    rejected: list[DeadLetter]


def encode_batch(batch: WriteBatch, *, src: str, now_ns: int) -> Encoded:
    """Encode a whole batch; readings that cannot be encoded become dead letters (in ``rejected``)."""
    lines: list[str] = []
    rejected: list[DeadLetter] = []
    readings = 0
    seq = 0
    for part in batch.parts:
        topic = f"{part.park}/{part.gw}"
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            try:
                out = reading_lines(part, reading, h3)
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
        lines.append(status_line(s))
    for r in batch.ledger:
        lines.append(ledger_line(r))
    return Encoded(lines=lines, readings=readings, rejected=rejected)
