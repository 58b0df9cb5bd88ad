"""Modbus register maps, read planning and decoding (agreed simulator layout)."""

from __future__ import annotations

import struct
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.collectors.modbus import to_reading
from edge_agent.collectors.registers import (
    PROFILES,
    BlockDecoder,
    decode_block,
    decode_register,
    encode_value,
    plan_reads,
    register_map,
)
from edge_agent.errors import DeviceError
from settings.edge import ModbusDevice, ModbusRegister, RegisterType


@pytest.mark.parametrize(
    ("reg", "words", "value"),
    [
        (ModbusRegister(field="a", address=0, type="uint16"), [65535], 65535),
        (ModbusRegister(field="a", address=0, type="int16", scale=0.1), [0xFFD3], -4.5),
        (ModbusRegister(field="a", address=0, type="uint16", scale=0.01), [231], 2.31),
        (ModbusRegister(field="a", address=0, type="uint32"), [0x0001, 0x1170], 70000),
        (ModbusRegister(field="a", address=0, type="uint32", word_order="little"), [0x1170, 0x0001], 70000),
        (ModbusRegister(field="a", address=0, type="int32"), [0xFFFF, 0xFFFE], -2),
        (ModbusRegister(field="a", address=0, type="float32"), [0x4144, 0xCCCD], 12.3),
        (ModbusRegister(field="a", address=0, type="float32", byte_order="little"), [0x4441, 0xCDCC], 12.3),
        (
            ModbusRegister(field="a", address=0, type="uint64", scale=0.001),
            [0, 0, 0x075B, 0xCD15],
            123456.789,
        ),
        (
            ModbusRegister(field="state", address=0, type="uint16", enum=["off", "idle", "running"]),
            [2],
            "running",
        ),
    ],
)
def test_decode_register(reg: ModbusRegister, words: list[int], value: object) -> None:
    assert decode_register(words, reg) == value


def test_enum_out_of_range_and_wrong_width_raise() -> None:
    with pytest.raises(ValueError, match="no name"):
        decode_register([9], ModbusRegister(field="state", address=0, enum=["off"]))
    with pytest.raises(ValueError, match="expected 2"):
        decode_register([1], ModbusRegister(field="a", address=0, type="uint32"))


def test_plan_reads_groups_neighbours() -> None:
    assert plan_reads(PROFILES["machine"]) == [(0, 14)]
    assert plan_reads(PROFILES["energy"]) == [(0, 12)]
    far = [ModbusRegister(field="a", address=0), ModbusRegister(field="b", address=100, type="uint32")]
    assert plan_reads(far) == [(0, 1), (100, 2)]


def test_register_map_overrides_profile_fields() -> None:
    dev = ModbusDevice(
        id="m", host="h", registers=[ModbusRegister(field="motor_temp_c", address=20, type="float32")]
    )
    regs = {r.field: r for r in register_map(dev)}
    assert regs["motor_temp_c"].address == 20 and len(regs) == len(PROFILES["machine"])


@given(
    st.sampled_from(["uint16", "int16", "uint32", "int32", "uint64"]),
    st.integers(min_value=0, max_value=2**15 - 1),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
)
def test_integer_round_trip(typ: str, raw: int, byte_order: str, word_order: str) -> None:
    reg = ModbusRegister(field="a", address=0, type=typ, byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    assert decode_register(encode_value(raw, reg), reg) == raw


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trip_is_exact(value: float) -> None:
    reg = ModbusRegister(field="a", address=0, type="float32")
    decoded = decode_register(encode_value(value, reg), reg)
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


def test_decode_block_and_reading() -> None:
    dev = ModbusDevice(id="cnc-1", host="h", tags={"line": "A"})
    words = [2, 613, 0xFFD3, 231, 555, 0, 0, 0, 0, 0, 1, 0x1170, 0, 12]
    values = decode_block(register_map(dev), {0: words})
    r = to_reading(dev, 1_700_000_000_000, values)
    assert r.state == "running"  # type: ignore[attr-defined]
    assert (r.spindle_temp_c, r.motor_temp_c, r.parts_total, r.rejects_total) == (61.3, -4.5, 70000, 12)  # type: ignore[attr-defined]
    assert r.tags == {"line": "A"}


def test_out_of_contract_value_is_a_device_error() -> None:
    dev = ModbusDevice(id="cnc-1", host="h")
    values = decode_block(register_map(dev), {0: [2, 9000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]})
    with pytest.raises(DeviceError, match="out of contract range"):
        to_reading(dev, 1, values)


def test_generic_device_puts_values_under_f() -> None:
    dev = ModbusDevice(
        id="pump-1",
        host="h",
        kind="generic",
        profile="custom",
        registers=[ModbusRegister(field="flow_l_min", address=0, scale=0.1)],
    )
    r = to_reading(dev, 1, decode_block(register_map(dev), {0: [123]}))
    assert r.f == {"flow_l_min": 12.3}  # type: ignore[attr-defined]


@given(
    st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=16, max_size=16),
    st.sampled_from(["uint16", "int16", "uint32", "int32", "float32", "uint64"]),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
    st.sampled_from([1.0, 0.1, 0.01, 0.001, 1e-6, 0.5]),
    st.integers(min_value=0, max_value=12),
)
def test_block_decoder_equals_the_reference_decoder(
    words: list[int],
    typ: RegisterType,
    byte_order: Literal["big", "little"],
    word_order: Literal["big", "little"],
    scale: float,
    address: int,
) -> None:
    regs = [
        ModbusRegister(
            field="a", address=address, type=typ, byte_order=byte_order, word_order=word_order, scale=scale
        ),
        ModbusRegister(field="state", address=15, enum=[str(i) for i in range(0x10000)]),
    ]
    blocks = plan_reads(regs)
    raw = struct.pack(">16H", *words)
    by_start = {start: raw[2 * start : 2 * (start + count)] for start, count in blocks}
    expected = decode_block(regs, {start: words[start : start + count] for start, count in blocks})
    got = BlockDecoder(regs, blocks).decode(by_start)
    assert list(got) == list(expected)
    for k in expected:
        # NaN float32 patterns compare by their bits.
        assert got[k] == expected[k] or (got[k] != got[k] and expected[k] != expected[k])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_decimal_scales_divide_to_the_same_float_as_rounding(k: int) -> None:
    # BlockDecoder divides 16- and 32-bit values by 10**k where the reference rounds v * 1e-k to
    # 6 digits: every 16-bit value (signed and unsigned) and the 32-bit extremes agree.
    scale = float(f"1e-{k}")
    values = [*range(-0x8000, 0x10000), -(2**31), 2**31 - 1, 2**32 - 1, 123_456_789, 4_000_000_001]
    assert [v / 10**k for v in values] == [float(round(v * scale, 6)) for v in values]
