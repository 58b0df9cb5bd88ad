"""The batch line encoder writes exactly what the generic line-protocol writer writes.

The reference here is :func:`storage.lineprotocol.encode_point` fed with the reading's values as
the storage layout lists them: the encoder (which formats a write batch column by column) must
agree with it for every kind, every combination of present and absent fields, tags and
positions, one reading at a time and mixed in batches (or refuse the same readings).
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import h3.api.basic_int as h3i
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import KINDS, Generic
from contract.readings import Reading
from ingest.model import Part
from ingest.points import LineEncoder, _float_texts
from storage.lineprotocol import FieldValue, LineProtocolError, encode_point
from storage.schema import KIND_LAYOUTS
from tests.contract.strategies import reading_of

CELL = h3i.latlng_to_cell(20.85, 106.68, 10)


def _reference(reading: Reading, park: str, gw: str, h3: int) -> str:
    if isinstance(reading, Generic):
        return "\n".join(_generic_reference(reading, park, gw, h3))
    layout = KIND_LAYOUTS[type(reading)]
    tags: list[tuple[str, str]] = [("dev", reading.dev), ("gw", gw), ("park", park)]
    if h3:
        tags.append(("h3", h3i.int_to_str(h3)))
    tags += [(name, getattr(reading, name)) for name, _ in layout.dims if getattr(reading, name) is not None]
    tags += list((reading.tags or {}).items())
    fields: list[tuple[str, FieldValue]] = [
        (name, float(value))
        for name in ("lat", "lon", "alt_m")
        if (value := getattr(reading, name)) is not None
    ]
    fields += [
        (c.name, getattr(reading, c.name))
        for c, _ in layout.columns
        if not c.dimension and getattr(reading, c.name) is not None
    ]
    return encode_point(layout.name, sorted(tags), fields or [("present", True)], reading.ts * 1_000_000)


def _outcome(fn: object, *args: object) -> str:
    try:
        return str(fn(*args))  # type: ignore[operator]
    except LineProtocolError:
        return "refused"


@settings(max_examples=300, deadline=None)
@given(
    reading=st.one_of(*(reading_of(k) for k in KINDS.values() if k is not Generic)),
    h3=st.sampled_from([0, CELL]),
)
def test_generated_encoders_match_the_generic_writer(reading: Reading, h3: int) -> None:
    part = Part(park="hp-1", gw="gw-01", readings=[reading], h3=[h3])  # type: ignore[list-item]
    encoder = LineEncoder()
    got = _outcome(lambda: encoder.lines(part, reading, h3)[0])
    assert got == _outcome(_reference, reading, "hp-1", "gw-01", h3)
    # A second encode of the same series comes from the prefix cache and must not differ.
    assert _outcome(lambda: encoder.lines(part, reading, h3)[0]) == got


def _generic_reference(reading: Generic, park: str, gw: str, h3: int) -> list[str]:
    tags: list[tuple[str, str]] = [("dev", reading.dev), ("gw", gw), ("park", park)]
    if h3:
        tags.append(("h3", h3i.int_to_str(h3)))
    tags += list((reading.tags or {}).items())
    position: list[tuple[str, FieldValue]] = [
        (name, float(value))
        for name in ("lat", "lon", "alt_m")
        if (value := getattr(reading, name)) is not None
    ]
    out = []
    for name, value in reading.f.items():
        field: tuple[str, FieldValue]
        if type(value) is bool:
            field = ("flag", value)
        elif isinstance(value, str):
            field = ("text", value)
        else:
            field = ("num", float(value))
        out.append(
            encode_point(
                "generic", sorted([*tags, ("name", name)]), [*position, field], reading.ts * 1_000_000
            )
        )
    return out


_ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e-3, 1e-3),
    st.sampled_from([0.0, -0.0, 1e16, 9999999999999998.0, 1e-4, 9.999e-05, 1e-5, 123.0, -1.5e300]),
)
_ODD_TEXT = st.text(alphabet=st.sampled_from(list('ab ,="\\\n\r\té\u2028')), min_size=1, max_size=8)


@st.composite
def _odd_reading(draw: st.DrawFn) -> Reading:
    """A reading as the decoder would give it, or one built without the decoder: floats of any
    size (NaN and infinities included), extreme timestamps and integers, odd strings."""
    kind = draw(st.sampled_from(list(KINDS.values())))
    reading = draw(reading_of(kind))
    changes: dict[str, Any] = {}
    if draw(st.booleans()):
        changes["ts"] = draw(st.sampled_from([0, 1, 253402300799999]))
    for f in msgspec.structs.fields(kind):
        value = getattr(reading, f.name)
        if type(value) is float and draw(st.booleans()):
            changes[f.name] = draw(_ANY_FLOAT)
        elif type(value) is int and f.name != "ts" and draw(st.booleans()):
            changes[f.name] = draw(st.sampled_from([0, 2**63 - 1, 2**36 - 1]))
    if draw(st.integers(0, 4)) == 0:
        changes["tags"] = draw(
            st.dictionaries(st.sampled_from(["line", "zone"]), _ODD_TEXT, min_size=1, max_size=2)
        )
    if kind is Generic and draw(st.booleans()):
        changes["f"] = draw(
            st.dictionaries(
                st.sampled_from(["a", "level_m", "mode"]),
                st.one_of(_ANY_FLOAT, st.integers(-(2**63), 2**63 - 1), st.booleans(), _ODD_TEXT),
                min_size=1,
                max_size=3,
            )
        )
    return msgspec.structs.replace(reading, **changes) if changes else reading


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(["hp-1", "hp-2"]),
            st.sampled_from(["gw-01", "gw-02"]),
            st.lists(st.tuples(_odd_reading(), st.sampled_from([0, CELL])), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=4,
    ),
    warm=st.booleans(),
)
def test_batch_encoder_writes_what_the_generic_writer_writes_reading_by_reading(
    parts: list[tuple[str, str, list[tuple[Reading, int]]]], warm: bool
) -> None:
    batch = [
        Part(park=park, gw=gw, readings=[r for r, _ in items], h3=[h for _, h in items])  # type: ignore[misc]
        for park, gw, items in parts
    ]
    encoder = LineEncoder()
    if warm:  # the same series again come from the prefix cache and must not differ
        encoder.encode(batch)
    lines, count, refused = encoder.encode(batch)
    want_lines: list[str] = []
    want_refused: list[tuple[str, str, int]] = []
    for part in batch:
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            try:
                if isinstance(reading, Generic):
                    want_lines += _generic_reference(reading, part.park, part.gw, h3)
                else:
                    want_lines.append(_reference(reading, part.park, part.gw, h3))
            except LineProtocolError:
                want_refused.append((part.park, part.gw, id(reading)))
    assert lines == want_lines
    assert [(p.park, p.gw, id(r)) for p, r, _ in refused] == want_refused
    assert count == sum(len(p.readings) for p in batch) - len(refused)
    assert all(isinstance(exc, LineProtocolError) for _, _, exc in refused)


@settings(max_examples=500, deadline=None)
@given(st.lists(_ANY_FLOAT, min_size=1, max_size=20))
def test_float_columns_are_written_as_repr_writes_them(values: list[float]) -> None:
    texts = _float_texts(values)
    if all(math.isfinite(v) for v in values):
        assert texts == [repr(v) for v in values]
    else:
        assert texts is None  # the encoder then refuses the readings at fault, through encode_point


def test_float_columns_match_repr_in_every_binade() -> None:
    rng = random.Random(17)
    values = [
        rng.random() * math.pow(10.0, e) * rng.choice([1, -1]) for e in range(-320, 308) for _ in range(40)
    ]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    finite = [v for v in values if math.isfinite(v)]
    assert len(finite) > 40_000
    for start in range(0, len(finite), 7):  # small columns: one odd value sends only its column to repr
        column = finite[start : start + 7]
        assert _float_texts(column) == [repr(v) for v in column]
