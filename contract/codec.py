"""Encode and decode contract messages.

Two encodings share every topic. JSON is the default; MessagePack is the compact alternative.
The first byte tells them apart without any header: a JSON message is an object and starts with
``{`` (or white space), while a MessagePack map starts with 0x80-0x8f, 0xde or 0xdf. An MQTT v5
``content-type`` property, when present, must agree with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from contract.errors import PayloadError
from contract.ids import ID
from contract.limits import (
    CONTRACT_VERSION,
    MAX_AGE_MS,
    MAX_FUTURE_MS,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
)
from contract.messages import Batch, Command, ConfigUpdate, Confirm, RawBatch, Seq, Status, Version
from contract.readings import (
    KINDS,
    RESERVED_TAG_KEYS,
    AnyReading,
    Generic,
    Reading,
    TimestampMs,
    measurement_fields,
    normalise_tech,
)
from contract.reasons import Reason, classify_validation, fmt_value

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


class _UncheckedBatch(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """:class:`contract.messages.Batch` with the gateway id's pattern left to :func:`decode_batch`.

    The pattern inside msgspec costs a regex search per message (about 5 % of a one-reading
    message's path); the codec matches it once per distinct id instead, like the device id's.
    Everything else, the order of the fields included, is Batch's, so the decoder refuses the
    same payloads with the same reasons.
    """

    v: Version
    gw: Annotated[str, msgspec.Meta(max_length=ID.max_length)]
    seq: Seq
    readings: Annotated[list[AnyReading], msgspec.Meta(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
    sent: TimestampMs | None = None


_UNCHECKED_BATCH = _Decoders(_UncheckedBatch)
_RAW_BATCH = _Decoders(RawBatch)
_READING = _Decoders(AnyReading)
_OTHER = {Status: _Decoders(Status), ConfigUpdate: _Decoders(ConfigUpdate), Command: _Decoders(Command)}
_OTHER[Confirm] = _Decoders(Confirm)
_PLAIN_JSON: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=float)
"""Untyped JSON whose huge numbers become infinities (then out of range), as the typed decoder does."""


_BY_FIRST_BYTE: Final[dict[int, Encoding]] = {
    0x7B: "json",  # {
    **dict.fromkeys(range(0x80, 0x90), "msgpack"),  # fixmap
    0xDE: "msgpack",  # map 16
    0xDF: "msgpack",  # map 32
}
"""The encoding a payload's first byte alone tells (what :func:`sniff` finds for it)."""


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


def encode_raw_batch(*, gw: str, seq: int, sent_ms: int, readings: Sequence[bytes]) -> bytes:
    """A JSON telemetry batch around readings that are already JSON-encoded, spliced in as they are.

    For a sender that stores readings encoded (the edge agent's disk buffer): the envelope is the
    codec's own, the readings are not decoded and re-encoded. The caller vouches for ``readings``
    (each one :func:`encode`-d reading) and ``gw`` (a valid id).
    """
    raw = [msgspec.Raw(r) for r in readings]
    return _json_enc.encode(RawBatch(v=CONTRACT_VERSION, gw=gw, seq=seq, sent=sent_ms, readings=raw))


def decode_message(payload: bytes, typ: type[M], content_type: str | None = None) -> M:
    """Decode a status, config, command or confirm message (all or nothing)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    enc = sniff(payload, content_type)
    try:
        msg = (_BATCH if typ is Batch else _OTHER[typ]).decode(payload, enc)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(_decode_reason(exc)) from exc
    return msg  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reading of a batch that failed validation, or one field dropped from a kept reading.

    Attributes:
        index: the reading's position in the batch.
        reason: ``<code>: <detail>`` (see :mod:`contract.reasons`), without the index.
        raw: the reading's bytes.
        key: the grouping key, ``code:field`` or ``code``.
        dropped: only the field named in ``key`` was dropped; the rest of the reading was kept.
    """

    index: int
    reason: str
    raw: bytes
    key: str = "invalid"
    dropped: bool = False


class DecodedBatch(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A batch split into valid readings and rejected ones.

    A struct, built once per message (about a fifth of a frozen dataclass's cost). ``gc=False``:
    it holds only its two lists, which can never lead back to it.
    """

    gw: str
    seq: int
    sent: int | None
    readings: list[AnyReading]
    rejected: list[Rejected]


def _reason(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:300]


def _decode_reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply (arrays and objects inside each other beyond the decoder's depth limit)"
    if isinstance(exc, UnicodeDecodeError):
        return f"a string is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return _reason(exc)


_KNOWN_IDS: Final[set[str]] = set()
"""Gateway and device ids that matched :data:`contract.ids.ID` (ids repeat: the pattern runs
once per id)."""
_KNOWN_IDS_MAX: Final = 100_000
_DEV_PATTERN: Final = f"Expected `str` matching regex {ID.pattern!r}"
"""What msgspec says of a string that does not match the pattern (the reason stays the same as
when the decoder itself checked the device id)."""


def _finite(value: object) -> bool:
    """Whether a generic value is no NaN or infinity (strings, integers and booleans are)."""
    return type(value) is not float or math.isfinite(value)


def _known_id(value: str) -> bool:
    """Whether ``value`` matches :data:`contract.ids.ID`'s pattern, remembered when it does."""
    if ID.regex.search(value) is None:  # re.search, as msgspec's Meta(pattern=...) does
        return False
    if len(_KNOWN_IDS) >= _KNOWN_IDS_MAX:
        _KNOWN_IDS.clear()
    _KNOWN_IDS.add(value)
    return True


def _check_dev(dev: str) -> Reason | None:
    """The device id's pattern (its length was checked by the decoder)."""
    if dev in _KNOWN_IDS or _known_id(dev):
        return None
    return Reason("malformed", "dev", f"dev={fmt_value(dev)}: {_DEV_PATTERN}")


def _check_reading(r: Reading, lo_ms: int, hi_ms: int) -> Reason | None:
    """Checks msgspec does not make: the device id's pattern, the clock window, coordinates,
    tag keys that clash, non-finite generic values."""
    why = _check_dev(r.dev)
    if why is not None:
        return why
    if r.ts < lo_ms:
        days = (hi_ms - MAX_FUTURE_MS - lo_ms) / 86_400_000
        return Reason("too_old", "ts", f"timestamp {r.ts} is older than the accepted window ({days:g} days)")
    if r.ts > hi_ms:
        return Reason("in_future", "ts", f"timestamp {r.ts} is more than 5 minutes in the future")
    if (r.lat is None) != (r.lon is None):
        return Reason("position", "", "lat and lon must be given together")
    if r.lat is not None and r.lat == 0.0 and r.lon == 0.0:
        return Reason("position", "", "position 0,0 is not a real fix (GNSS without a fix?)")
    if r.tags is not None:
        for key in r.tags:
            if key in RESERVED_TAG_KEYS or key in type(r).__struct_fields__:
                return Reason(
                    "tag_clash", "tags", f"tag {key!r} clashes with a field or reserved name; rename it"
                )
    if type(r) is Generic:
        for name, value in r.f.items():
            if type(value) is float and not math.isfinite(value):
                return Reason("not_finite", "f", f"field {name!r} is not a finite number")
    return None


def _rejected(i: int, why: Reason, raw: bytes, *, dropped: bool = False) -> Rejected:
    return Rejected(index=i, reason=str(why), raw=raw, key=why.key, dropped=dropped)


def decode_batch(
    payload: bytes,
    *,
    content_type: str | None = None,
    now_ms: int | None = None,
    max_age_ms: int | None = MAX_AGE_MS,
) -> DecodedBatch:
    """Decode and validate a telemetry batch.

    A broken envelope (size, encoding, version, gateway id, sequence) raises
    :class:`PayloadError`. Readings are validated one by one: the valid ones are returned,
    each invalid one comes back as a :class:`Rejected` with a precise reason. An optional
    measurement that is out of range or malformed is dropped from its reading (a ``Rejected``
    with ``dropped`` set) and the reading is kept; a technology spelt in another case or an
    unambiguous alias (``lte``, ``5g``) is normalised. ``max_age_ms`` None accepts any age.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    # The first byte alone tells the common cases (no content type, no leading white space);
    # anything else, an empty payload included, goes through sniff() and its reasons.
    enc = _BY_FIRST_BYTE.get(payload[0]) if payload and content_type is None else None
    if enc is None:
        enc = sniff(payload, content_type)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lo = 0 if max_age_ms is None else now - max_age_ms
    hi = now + MAX_FUTURE_MS
    try:
        batch: _UncheckedBatch = (
            _UNCHECKED_BATCH.json if enc == "json" else _UNCHECKED_BATCH.msgpack
        ).decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # The fault may sit in one reading (a wrong value, invalid UTF-8 in a MessagePack
        # string, nesting beyond the decoder's depth limit): find the bad readings one by one.
        # A broken envelope fails there too and becomes a PayloadError.
        return _decode_one_by_one(payload, enc, lo, hi)
    known = _KNOWN_IDS
    if batch.gw not in known and not _known_id(batch.gw):
        # As when the decoder checked the pattern: the envelope's own decoder refuses the
        # batch, with its reason.
        return _decode_one_by_one(payload, enc, lo, hi)
    decoded = batch.readings
    for r in decoded:
        # The common case inline (a call per reading costs more than these tests); anything
        # that may be at fault goes to the full check below.
        if r.dev not in known and _check_dev(r.dev) is not None:
            # As when the decoder checked the pattern: the reading is refused alone, with its
            # own bytes, whatever else is wrong with it.
            return _decode_one_by_one(payload, enc, lo, hi)
        ts = r.ts
        if ts < lo or ts > hi or r.tags is not None:
            break
        if type(r) is Generic and not all(map(_finite, r.f.values())):
            break
        lat = r.lat
        if lat is None:
            if r.lon is not None:
                break
        elif r.lon is None or (lat == 0.0 and r.lon == 0.0):
            break
    else:
        return DecodedBatch(gw=batch.gw, seq=batch.seq, sent=batch.sent, readings=decoded, rejected=[])
    readings: list[AnyReading] = []
    rejected: list[Rejected] = []
    for i, r in enumerate(decoded):
        why = _check_reading(r, lo, hi)
        if why is None:
            readings.append(r)
        elif why.field == "dev":
            return _decode_one_by_one(payload, enc, lo, hi)
        else:
            rejected.append(_rejected(i, why, _json_enc.encode(r)))
    return DecodedBatch(gw=batch.gw, seq=batch.seq, sent=batch.sent, readings=readings, rejected=rejected)


def _raw_batch(payload: bytes, enc: Encoding) -> tuple[RawBatch, list[bytes]]:
    """The envelope and each reading's bytes, even when a reading is nested too deeply to skip."""
    try:
        raw: RawBatch = _RAW_BATCH.decode(payload, enc)  # type: ignore[assignment]
        return raw, [bytes(item) for item in raw.readings]
    except RecursionError:
        pass  # msgspec skips values recursively: split the readings without recursion instead
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(_decode_reason(exc)) from exc
    spans = _json_reading_spans(payload) if enc == "json" else _msgpack_reading_spans(payload)
    if not spans:
        raise PayloadError(_decode_reason(RecursionError()))
    blank = b"null" if enc == "json" else b"\xc0"
    envelope, last = bytearray(), 0
    for start, end in spans:
        envelope += payload[last:start] + blank
        last = end
    envelope += payload[last:]
    try:
        raw = _RAW_BATCH.decode(bytes(envelope), enc)  # type: ignore[assignment]
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(_decode_reason(exc)) from exc
    return raw, [payload[start:end] for start, end in spans]


def _json_reading_spans(p: bytes) -> list[tuple[int, int]]:
    """Byte spans of the elements of the top-level ``readings`` array, by an iterative scan.

    Returns an empty list when the payload is not shaped like a batch (the caller then rejects it).
    """
    spans: list[tuple[int, int]] = []
    depth, i, n = 0, 0, len(p)
    expect_key, key = False, b""
    in_readings, start = False, -1
    while i < n:
        c = p[i]
        if c == 0x22:  # a string: skip it whole, escapes included
            j = i + 1
            while j < n and p[j] != 0x22:
                j += 2 if p[j] == 0x5C else 1
            if depth == 1 and expect_key:
                key, expect_key = p[i + 1 : j], False
            elif in_readings and depth == 2 and start < 0:
                start = i
            i = j + 1
            continue
        if c in b" \t\r\n":
            i += 1
            continue
        if in_readings and depth == 2 and c in b",]":
            if start >= 0:
                spans.append((start, len(p[:i].rstrip())))
                start = -1
            if c == 0x5D:
                in_readings = False
                depth -= 1
            i += 1
            continue
        if in_readings and depth == 2 and start < 0:
            start = i
        if c in b"{[":
            if depth == 1 and c == 0x5B and key == b"readings" and not in_readings and not spans:
                in_readings = True
            depth += 1
            if depth == 1:
                expect_key = c == 0x7B
        elif c in b"}]":
            depth -= 1
        elif c == 0x2C and depth == 1:
            expect_key = True
        i += 1
    return spans


def _msgpack_skip(p: bytes, i: int) -> int:
    """The offset after the MessagePack value at ``i``, found by counting items (no recursion)."""
    pending = 1
    while pending:
        b = p[i]
        pending -= 1
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            i += 1
        elif b <= 0x8F:
            pending += 2 * (b & 0x0F)
            i += 1
        elif b <= 0x9F:
            pending += b & 0x0F
            i += 1
        elif b <= 0xBF:
            i += 1 + (b & 0x1F)
        elif b in _MP_FIXED:
            i += _MP_FIXED[b]
        elif b in _MP_SIZED:
            width, extra = _MP_SIZED[b]
            i += 1 + width + extra + int.from_bytes(p[i + 1 : i + 1 + width], "big")
        elif b in _MP_CONTAINER:
            width, per_item = _MP_CONTAINER[b]
            pending += per_item * int.from_bytes(p[i + 1 : i + 1 + width], "big")
            i += 1 + width
        else:
            raise IndexError("invalid MessagePack type byte")
        if i > len(p):
            raise IndexError("truncated MessagePack value")
    return i


_MP_FIXED: Final = {0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5,
                    0xD3: 9, 0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18}  # fmt: skip
_MP_SIZED: Final = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
                    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}  # fmt: skip
"""Type byte → (length width, bytes after the length besides the data: the ext type)."""
_MP_CONTAINER: Final = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def _msgpack_reading_spans(p: bytes) -> list[tuple[int, int]]:
    """Byte spans of the elements of the top-level ``readings`` array (empty when not found)."""
    try:
        b = p[0]
        if 0x80 <= b <= 0x8F:
            pairs, i = b & 0x0F, 1
        elif b in (0xDE, 0xDF):
            width = 2 if b == 0xDE else 4
            pairs, i = int.from_bytes(p[1 : 1 + width], "big"), 1 + width
        else:
            return []
        for _ in range(pairs):
            key_start = i
            i = _msgpack_skip(p, i)
            is_readings = p[key_start:i] == b"\xa8readings"
            if not is_readings:
                i = _msgpack_skip(p, i)
                continue
            b = p[i]
            if 0x90 <= b <= 0x9F:
                count, i = b & 0x0F, i + 1
            elif b in (0xDC, 0xDD):
                width = 2 if b == 0xDC else 4
                count, i = int.from_bytes(p[i + 1 : i + 1 + width], "big"), i + 1 + width
            else:
                return []
            spans = []
            for _ in range(count):
                start = i
                i = _msgpack_skip(p, i)
                spans.append((start, i))
            return spans
    except IndexError:
        return []
    return []


def _decode_one_by_one(payload: bytes, enc: Encoding, lo: int, hi: int) -> DecodedBatch:
    raw, blobs = _raw_batch(payload, enc)
    readings: list[AnyReading] = []
    rejected: list[Rejected] = []
    for i, blob in enumerate(blobs):
        notes: list[Reason] = []
        try:
            r: AnyReading = _READING.decode(blob, enc)  # type: ignore[assignment]
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            salvaged, notes = _salvage(blob, enc, exc)
            if salvaged is None:
                rejected.extend(_rejected(i, n, blob) for n in notes)
                continue
            r = salvaged
        why = _check_reading(r, lo, hi)
        if why is not None and why.field == "dev":
            # A device id outside the pattern refuses the reading alone (no field dropped).
            rejected.append(_rejected(i, why, blob))
            continue
        rejected.extend(_rejected(i, n, blob, dropped=True) for n in notes)
        if why is None:
            readings.append(r)
        else:
            rejected.append(_rejected(i, why, blob))
    return DecodedBatch(gw=raw.gw, seq=raw.seq, sent=raw.sent, readings=readings, rejected=rejected)


_DROPPABLE: Final[dict[type[Reading], frozenset[str]]] = {
    kind: frozenset(measurement_fields(kind))
    & {f.name for f in msgspec.structs.fields(kind) if not f.required}
    for kind in KINDS.values()
}
"""Per kind, the optional measurements a bad value is dropped from (operator, tech, target, f are
required: a fault there refuses the reading)."""


def _too_big(value: object) -> bool:
    """Whether ``value`` holds an integer no 64-bit type can carry (only JSON can say one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_too_big(k) or _too_big(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_too_big(v) for v in value)
    return False


def _huge(obj: dict[str, object]) -> Reason:
    """The reason for the first field of ``obj`` holding an integer beyond 64 bits."""
    field = next((k for k, v in obj.items() if _too_big(v)), "")
    return Reason("out_of_range", field, f"{field or 'the reading'}: an integer beyond 64 bits")


def _salvage(blob: bytes, enc: Encoding, exc: Exception) -> tuple[AnyReading | None, list[Reason]]:
    """Keep what is valid of a reading that failed to decode.

    Returns the reading (None when it is refused) and the reasons: the dropped fields, or the
    one reason that refuses it. Only optional measurement fields are dropped; a fault in a
    required or common field (time, device, position, tags) or the kind refuses the reading.
    """
    refused = Reason("malformed", "", _decode_reason(exc))
    if isinstance(exc, RecursionError | UnicodeDecodeError):
        return None, [refused]
    try:
        obj = _PLAIN_JSON.decode(blob) if enc == "json" else msgspec.msgpack.decode(blob)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as err:
        return None, [Reason("malformed", "", _decode_reason(err))]
    if not isinstance(obj, dict):
        return None, [classify_validation(str(exc))]
    kind = KINDS.get(obj["kind"]) if isinstance(obj.get("kind"), str) else None
    if kind is None:
        return None, [classify_validation(str(exc), obj)]
    tech = obj.get("tech")
    if isinstance(tech, str) and "tech" in kind.__struct_fields__:
        obj["tech"] = normalise_tech(tech) or tech
    droppable = _DROPPABLE[kind]
    dropped: list[Reason] = []
    for _ in range(len(obj) + 1):
        try:
            # Re-encoded as MessagePack (keeps infinities and types) for the prebuilt decoder:
            # msgspec.convert to the union type builds its plan again on every call (~1000x slower).
            reading: AnyReading = _READING.msgpack.decode(_mp_enc.encode(obj))
        except (msgspec.ValidationError, OverflowError) as err:
            # OverflowError: a JSON integer beyond 64 bits, which MessagePack cannot carry.
            why = (
                classify_validation(str(err), obj) if isinstance(err, msgspec.ValidationError) else _huge(obj)
            )
            if why.field in droppable and why.field in obj and why.code != "unknown_field":
                del obj[why.field]
                dropped.append(why)
                continue
            return None, [why]
        return reading, dropped
    return None, [refused]  # pragma: no cover - every pass drops a field or ends
