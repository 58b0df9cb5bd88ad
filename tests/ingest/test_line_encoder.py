"""The generated per-kind line encoders write exactly what the generic line-protocol writer writes.

The reference here is :func:`storage.lineprotocol.encode_point` fed with the reading's values as
the storage layout lists them: the generated code must agree with it for every kind, every
combination of present and absent fields, tags and positions (or refuse the same readings).
"""

from __future__ import annotations

import h3.api.basic_int as h3i
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import KINDS, Generic
from contract.readings import Reading
from ingest.model import Part
from ingest.points import LineEncoder
from storage.lineprotocol import FieldValue, LineProtocolError, encode_point
from storage.schema import KIND_LAYOUTS
from tests.contract.strategies import reading_of

CELL = h3i.latlng_to_cell(20.85, 106.68, 10)


def _reference(reading: Reading, park: str, gw: str, h3: int) -> str:
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
