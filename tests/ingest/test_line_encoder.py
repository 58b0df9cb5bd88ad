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


def _expected(batch: list[Part]) -> tuple[list[str], list[tuple[int, str]]]:
    """Lines and refusals (reading id, reason) as encode_point makes them, reading by reading."""
    lines: list[str] = []
    refused: list[tuple[int, str]] = []
    for part in batch:
        for reading, h3 in zip(part.readings, part.h3, strict=True):
            try:
                if isinstance(reading, Generic):
                    lines += _generic_reference(reading, part.park, part.gw, h3)
                else:
                    lines.append(_reference(reading, part.park, part.gw, h3))
            except LineProtocolError as exc:
                refused.append((id(reading), str(exc)))
    return lines, refused


def _check(batch: list[Part], encoder: LineEncoder | None = None) -> list[str]:
    lines, count, refused = (encoder or LineEncoder()).encode(batch)
    want_lines, want_refused = _expected(batch)
    assert lines == want_lines
    assert [(id(r), str(exc)) for _, r, exc in refused] == want_refused
    assert count == sum(len(p.readings) for p in batch) - len(want_refused)
    return lines


TS = 1_790_000_000_000


def test_large_groups_of_every_rare_shape_match_the_generic_writer() -> None:
    """Groups large enough that each rare path runs inside a group of plain readings: fields
    present in some readings only, dimensions and cells absent in some, tags of the readings'
    own, tag values InfluxDB cannot store, a NaN, and generic values of every type."""
    from contract import Broadband, Cellular, Wifi

    readings: list[Reading] = []
    cells: list[int] = []
    for i in range(300):
        ts = TS + i
        readings.append(
            Cellular(
                ts=ts,
                dev=f"m{i % 7}",
                operator="bad\\" if i == 150 else ("a b,c=d" if i % 50 == 0 else ["Viettel", "VNPT"][i % 2]),
                tech="LTE",
                rsrp_dbm=-100.5 + i % 10,
                sinr_db=None if i % 3 else 4.25,
                pci=i if i % 5 else None,
                lat=20.8 + i * 1e-4,
                lon=106.7,
                tags={"line": f"L{i % 3}"} if i % 11 == 0 else None,
            )
        )
        cells.append(h3i.latlng_to_cell(20.8 + i * 1e-4, 106.7, 10))
        readings.append(
            Wifi(
                ts=ts,
                dev="w1",
                ssid=None if i % 4 == 0 else ("" if i % 9 == 0 else f"net {i % 3}"),
                rssi_dbm=-60.0,
            )
        )
        cells.append(0 if i % 2 else CELL)
        readings.append(
            Broadband(
                ts=ts,
                dev="b1",
                target="vnix-hn",
                latency_ms=float("nan") if i == 123 else 12.5,
                ipv6_ok=bool(i % 2),
            )
        )
        cells.append(0)
        choices: list[dict[str, Any]] = [
            {"level_m": 1.5 + i},
            {"level_m": 2.0, "mode": "auto" if i % 2 else 'say "hi"\\', "ok": bool(i % 3), "n": i},
            {"x": i},
            {"bad": float("inf")} if i == 79 else {"flag": False},
        ]
        values = choices[i % 4]
        readings.append(
            Generic(
                ts=ts,
                dev=f"g{i % 3}",
                f=values,
                lat=20.9 if i % 6 == 0 else None,
                lon=106.6 if i % 6 == 0 else None,
            )
        )
        cells.append(CELL if i % 6 == 0 else 0)
    batch = [
        Part(park="hp-1", gw="gw-01", readings=readings[:600], h3=cells[:600]),  # type: ignore[arg-type]
        Part(park="hp 2", gw="gw=02", readings=readings[600:], h3=cells[600:]),  # type: ignore[arg-type]
    ]
    encoder = LineEncoder()
    lines = _check(batch, encoder)
    assert len(lines) > 1000
    _, _, refused = LineEncoder().encode(batch)
    # operator "bad\\" (i = 150), the NaN (i = 123), the infinity (i = 79)
    assert sorted(r.ts - TS for _, r, _ in refused) == [79, 123, 150]
    assert any(",line=L0" in line for line in lines) and any(",ssid=net\\ 1" in line for line in lines)
    _check(batch, encoder)  # again, every tag text and prefix from the caches


def test_generic_values_of_every_type_in_one_batch() -> None:
    readings = [
        Generic(ts=TS + i, dev="g1", f={"v": value})
        for i, value in enumerate(
            list[Any]([1.5, 2, True, False, "text", 'q"uote\\', 0.0, -(2**63), 2**63 - 1, 1e300])
        )
    ]
    lines = _check([Part(park="hp-1", gw="gw-01", readings=readings, h3=[0] * len(readings))])  # type: ignore[arg-type]
    assert [line.split(" ")[1] for line in lines[:6]] == [
        "num=1.5",
        "num=2.0",
        "flag=true",
        "flag=false",
        'text="text"',
        'text="q\\"uote\\\\"',
    ]


def test_bad_tag_values_are_refused_with_the_generic_writers_reason() -> None:
    from contract import Cellular

    readings = [
        Cellular(ts=TS + i, dev="m1", operator=op, tech="LTE", rsrp_dbm=-90.0)
        for i, op in enumerate(["ok", "ends\\", "two\nlines", "ok"])
    ]
    _, count, refused = LineEncoder().encode(
        [Part(park="hp-1", gw="gw-01", readings=readings, h3=[0] * 4)]  # type: ignore[arg-type]
    )
    assert count == 2
    assert [r.operator for _, r, _ in refused] == ["ends\\", "two\nlines"]  # type: ignore[attr-defined]
    assert "backslash at its end" in str(refused[0][2]) and "line break" in str(refused[1][2])
    _check([Part(park="hp-1", gw="gw-01", readings=readings, h3=[0] * 4)])  # type: ignore[arg-type]


def test_caches_that_fill_up_start_again_without_changing_a_line(monkeypatch: Any) -> None:
    import ingest.points

    monkeypatch.setattr(ingest.points, "_PREFIX_CACHE_MAX", 3)
    from contract import Cellular

    readings = [
        Cellular(
            ts=TS + i, dev=f"m{i}", operator=f"op{i % 5}", tech="NR", lat=20.0 + i / 100, lon=106.0,
            tags={"line": f"L{i}"} if i % 4 == 0 else None,
        )
        for i in range(40)
    ]  # fmt: skip
    cells = [h3i.latlng_to_cell(r.lat, r.lon, 10) for r in readings]
    encoder = LineEncoder()
    for _ in range(2):
        _check([Part(park="hp-1", gw="gw-01", readings=readings, h3=cells)], encoder)  # type: ignore[arg-type]
