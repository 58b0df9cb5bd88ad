"""Encode and decode contract messages.

Two encodings share every topic. JSON is the default; MessagePack is the compact alternative.
The first byte tells them apart without any header: a JSON message is an object and starts with
``{`` (or white space), while a MessagePack map starts with 0x80-0x8f, 0xde or 0xdf. An MQTT v5
``content-type`` property, when present, must agree with it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgspec

from contract.errors import PayloadError
from contract.limits import MAX_AGE_MS, MAX_FUTURE_MS, MAX_PAYLOAD_BYTES
from contract.messages import Batch, Command, ConfigUpdate, Confirm, RawBatch, Status
from contract.readings import RESERVED_TAG_KEYS, AnyReading, Generic, Reading

Encoding = Literal["json", "msgpack"]
CONTENT_TYPES: Final[dict[Encoding, str]] = {"json": "application/json", "msgpack": "application/msgpack"}

_json_enc = msgspec.json.Encoder()
_mp_enc = msgspec.msgpack.Encoder()

M = TypeVar("M", Batch, Status, ConfigUpdate, Command, Confirm)


class _Decoders:
    def __init__(self, typ: Any) -> None:
        self.json: msgspec.json.Decoder[Any] = msgspec.json.Decoder(typ)
        self.msgpack: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(typ)

    def decode(self, payload: bytes, encoding: Encoding) -> object:
        return (self.json if encoding == "json" else self.msgpack).decode(payload)


_BATCH = _Decoders(Batch)
_RAW_BATCH = _Decoders(RawBatch)
_READING = _Decoders(AnyReading)
_OTHER = {Status: _Decoders(Status), ConfigUpdate: _Decoders(ConfigUpdate), Command: _Decoders(Command)}
_OTHER[Confirm] = _Decoders(Confirm)


def sniff(payload: bytes, content_type: str | None = None) -> Encoding:
    """Tell the encoding of ``payload`` from its first byte (and MQTT v5 content type)."""
    if not payload:
        raise PayloadError("empty payload")
    first = payload.lstrip(b" \t\r\n")[:1]
    if first == b"{":
        found: Encoding = "json"
    elif 0x80 <= payload[0] <= 0x8F or payload[0] in (0xDE, 0xDF):
        found = "msgpack"
    else:
        raise PayloadError("payload is neither a JSON object nor a MessagePack map")
    if content_type and content_type.split(";")[0].strip() != CONTENT_TYPES[found]:
        raise PayloadError(f"content type {content_type[:60]!r} does not match a {found} payload")
    return found


def encode(message: Batch | Status | ConfigUpdate | Command | Confirm, encoding: Encoding = "json") -> bytes:
    """Serialize a contract message."""
    return _json_enc.encode(message) if encoding == "json" else _mp_enc.encode(message)


def decode_message(payload: bytes, typ: type[M], content_type: str | None = None) -> M:
    """Decode a status, config, command or confirm message (all or nothing)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    enc = sniff(payload, content_type)
    try:
        msg = (_BATCH if typ is Batch else _OTHER[typ]).decode(payload, enc)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(_reason(exc)) from exc
    return msg  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reading of a batch that failed validation."""

    index: int
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A batch split into valid readings and rejected ones."""

    gw: str
    seq: int
    sent: int | None
    readings: list[AnyReading]
    rejected: list[Rejected]


def _reason(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:300]


def _check_reading(r: Reading, lo_ms: int, hi_ms: int) -> str | None:
    """Checks msgspec cannot express: the clock window, coordinates, non-finite generic values."""
    if r.ts < lo_ms:
        return f"timestamp {r.ts} is older than the accepted window (30 days)"
    if r.ts > hi_ms:
        return f"timestamp {r.ts} is more than 5 minutes in the future"
    if (r.lat is None) != (r.lon is None):
        return "lat and lon must be given together"
    if r.lat is not None and r.lat == 0.0 and r.lon == 0.0:
        return "position 0,0 is not a real fix (GNSS without a fix?)"
    if r.tags is not None:
        for key in r.tags:
            if key in RESERVED_TAG_KEYS or key in type(r).__struct_fields__:
                return f"tag {key!r} clashes with a field or reserved name; rename it"
    if type(r) is Generic:
        for name, value in r.f.items():
            if type(value) is float and not math.isfinite(value):
                return f"field {name!r} is not a finite number"
    return None


def decode_batch(
    payload: bytes, *, content_type: str | None = None, now_ms: int | None = None
) -> DecodedBatch:
    """Decode and validate a telemetry batch.

    A broken envelope (size, encoding, version, gateway id, sequence) raises
    :class:`PayloadError`. Readings are validated one by one: the valid ones are returned,
    each invalid one comes back as a :class:`Rejected` with a precise reason.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    enc = sniff(payload, content_type)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lo, hi = now - MAX_AGE_MS, now + MAX_FUTURE_MS
    try:
        batch: Batch = _BATCH.decode(payload, enc)  # type: ignore[assignment]
    except msgspec.ValidationError:
        # ValidationError subclasses DecodeError: catch it first to find the bad readings.
        return _decode_one_by_one(payload, enc, lo, hi)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec's MessagePack decoder lets invalid UTF-8 in a str through as UnicodeDecodeError.
        raise PayloadError(_reason(exc)) from exc
    readings: list[AnyReading] = []
    rejected: list[Rejected] = []
    for i, r in enumerate(batch.readings):
        why = _check_reading(r, lo, hi)
        if why is None:
            readings.append(r)
        else:
            rejected.append(Rejected(index=i, reason=why, raw=_json_enc.encode(r)))
    return DecodedBatch(gw=batch.gw, seq=batch.seq, sent=batch.sent, readings=readings, rejected=rejected)


def _decode_one_by_one(payload: bytes, enc: Encoding, lo: int, hi: int) -> DecodedBatch:
    try:
        raw: RawBatch = _RAW_BATCH.decode(payload, enc)  # type: ignore[assignment]
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(_reason(exc)) from exc
    readings: list[AnyReading] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(raw.readings):
        blob = bytes(item)
        try:
            r: AnyReading = _READING.decode(blob, enc)  # type: ignore[assignment]
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            rejected.append(
                Rejected(index=i, reason=_reason(exc).replace("`$", f"`$.readings[{i}]"), raw=blob)
            )
            continue
        why = _check_reading(r, lo, hi)
        if why is None:
            readings.append(r)
        else:
            rejected.append(Rejected(index=i, reason=why, raw=blob))
    return DecodedBatch(gw=raw.gw, seq=raw.seq, sent=raw.sent, readings=readings, rejected=rejected)
