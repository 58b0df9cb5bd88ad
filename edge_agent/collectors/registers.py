"""Pure Modbus register decoding: register maps, read planning and value conversion.

The agreed device interface (``docs/firmware-sim.md``): holding registers, big-endian bytes,
32/64-bit values with the high word first, unless a register says otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

from settings.edge import ModbusDevice, ModbusRegister, RegisterType

REGISTER_COUNT: Final[dict[RegisterType, int]] = {
    "uint16": 1,
    "int16": 1,
    "uint32": 2,
    "int32": 2,
    "float32": 2,
    "uint64": 4,
}
_STRUCT: Final[dict[RegisterType, str]] = {
    "uint16": "H",
    "int16": "h",
    "uint32": "I",
    "int32": "i",
    "float32": "f",
    "uint64": "Q",
}
MACHINE_STATES: Final = ["off", "idle", "running", "fault", "setup"]

PROFILES: Final[dict[str, list[ModbusRegister]]] = {
    "machine": [
        ModbusRegister(field="state", address=0, type="uint16", enum=MACHINE_STATES),
        ModbusRegister(field="spindle_temp_c", address=1, type="int16", scale=0.1, unit="°C"),
        ModbusRegister(field="motor_temp_c", address=2, type="int16", scale=0.1, unit="°C"),
        ModbusRegister(field="vibration_mm_s", address=3, type="uint16", scale=0.01, unit="mm/s"),
        ModbusRegister(field="spindle_load_pct", address=4, type="uint16", scale=0.1, unit="%"),
        ModbusRegister(field="parts_total", address=10, type="uint32"),
        ModbusRegister(field="rejects_total", address=12, type="uint32"),
    ],
    "energy": [
        ModbusRegister(field="power_kw", address=0, type="float32", unit="kW"),
        ModbusRegister(field="voltage_v", address=2, type="float32", unit="V"),
        ModbusRegister(field="current_a", address=4, type="float32", unit="A"),
        ModbusRegister(field="power_factor", address=6, type="float32"),
        ModbusRegister(field="energy_kwh", address=8, type="uint64", scale=0.001, unit="kWh"),
    ],
    "environment": [
        ModbusRegister(field="temp_c", address=0, type="int16", scale=0.1, unit="°C"),
        ModbusRegister(field="humidity_pct", address=1, type="uint16", scale=0.1, unit="%"),
        ModbusRegister(field="pm25_ug_m3", address=2, type="uint16", scale=0.1, unit="µg/m³"),
        ModbusRegister(field="noise_dba", address=3, type="uint16", scale=0.1, unit="dBA"),
        ModbusRegister(field="co2_ppm", address=4, type="uint16", unit="ppm"),
    ],
    "custom": [],
}
"""Built-in register maps of the simulator's (and typical) devices."""

INTEGER_FIELDS: Final = frozenset({"parts_total", "rejects_total"})
"""Contract fields that are integers (counters); the rest are floats."""

Value = float | int | str


def register_map(device: ModbusDevice) -> list[ModbusRegister]:
    """The device's profile with its ``registers`` added or overriding by field name."""
    by_field = {r.field: r for r in PROFILES[device.profile]}
    for r in device.registers:
        by_field[r.field] = r
    return sorted(by_field.values(), key=lambda r: r.address)


def plan_reads(
    registers: Sequence[ModbusRegister], *, max_gap: int = 8, max_count: int = 125
) -> list[tuple[int, int]]:
    """Group registers into few ``(start, count)`` block reads.

    Neighbouring registers less than ``max_gap`` apart share a read; a block never exceeds
    ``max_count`` registers (the Modbus limit for one read is 125).
    """
    blocks: list[tuple[int, int]] = []
    for r in sorted(registers, key=lambda r: r.address):
        end = r.address + REGISTER_COUNT[r.type]
        if blocks:
            start, count = blocks[-1]
            if r.address - (start + count) < max_gap and end - start <= max_count:
                blocks[-1] = (start, max(count, end - start))
                continue
        blocks.append((r.address, end - r.address))
    return blocks


def decode_register(words: Sequence[int], reg: ModbusRegister) -> Value:
    """Convert the raw 16-bit words of one register field into its (scaled) value.

    Raises:
        ValueError: wrong number of words, or an enum index out of range.
    """
    n = REGISTER_COUNT[reg.type]
    if len(words) != n:
        raise ValueError(f"{reg.field}: expected {n} registers, got {len(words)}")
    ordered = list(words) if reg.word_order == "big" else list(reversed(words))
    raw = b"".join(w.to_bytes(2, reg.byte_order) for w in ordered)
    value: int | float = struct.unpack(">" + _STRUCT[reg.type], raw)[0]
    if reg.enum is not None:
        if not 0 <= value < len(reg.enum):
            raise ValueError(f"{reg.field}: raw value {value} has no name in {reg.enum}")
        return reg.enum[int(value)]
    if reg.type == "float32":
        return _shortest_float32(raw) * reg.scale if reg.scale != 1.0 else _shortest_float32(raw)
    if reg.scale == 1.0:
        return int(value)
    return float(round(value * reg.scale, 6))


def _shortest_float32(raw: bytes) -> float:
    """The shortest decimal that is the same float32 (12.3, not 12.300000190734863)."""
    for digits in range(6, 10):
        candidate = float(f"{struct.unpack('>f', raw)[0]:.{digits}g}")
        if struct.pack(">f", candidate) == raw:
            return candidate
    return float(struct.unpack(">f", raw)[0])


def decode_block(
    registers: Sequence[ModbusRegister], blocks: Mapping[int, Sequence[int]]
) -> dict[str, Value]:
    """Decode every register from block reads (``start -> words``) into ``field -> value``."""
    out: dict[str, Value] = {}
    for reg in registers:
        n = REGISTER_COUNT[reg.type]
        for start, words in blocks.items():
            if start <= reg.address and reg.address + n <= start + len(words):
                off = reg.address - start
                out[reg.field] = decode_register(words[off : off + n], reg)
                break
        else:
            raise ValueError(f"{reg.field}: register {reg.address} was not read")
    return out


_INT32_TYPES: Final = frozenset({"uint16", "int16", "uint32", "int32"})


def _decimal_divisor(scale: float) -> int:
    """``10**k`` when ``scale`` is ``1e-k`` (k = 1..6), else 0.

    For the 16- and 32-bit integer types, ``v / 10**k`` is the same float as
    ``float(round(v * scale, 6))`` (tested exhaustively for 16 bits), and a division is a fifth of
    the cost of a ``round`` to 6 digits.
    """
    for k in range(1, 7):
        if scale == float(f"1e-{k}"):
            return int(10**k)
    return 0


class BlockDecoder:
    """:func:`decode_block` precompiled for one register map, over the raw bytes of block reads.

    The poll loop runs it for every reading. When every register has the usual layout (integer,
    big-endian, high word first; the built-in ``machine`` and ``environment`` profiles), one
    ``struct.unpack_from`` reads all the registers of a block; otherwise each register is read
    on its own (a single ``struct.unpack_from`` each for the usual layout).
    """

    def __init__(self, registers: Sequence[ModbusRegister], blocks: Sequence[tuple[int, int]]) -> None:
        self._plan: list[tuple[ModbusRegister, int, int, struct.Struct | None, tuple[str, ...] | None]] = []
        for reg in registers:
            n = REGISTER_COUNT[reg.type]
            start = next((b for b, c in blocks if b <= reg.address and reg.address + n <= b + c), None)
            if start is None:
                raise ValueError(f"{reg.field}: register {reg.address} is outside every planned read")
            fast = reg.byte_order == "big" and (reg.word_order == "big" or n == 1) and reg.type != "float32"
            st = struct.Struct(">" + _STRUCT[reg.type]) if fast else None
            enum = tuple(reg.enum) if reg.enum is not None else None
            self._plan.append((reg, start, 2 * (reg.address - start), st, enum))
        self._blocks = self._whole_blocks()

    def _whole_blocks(
        self,
    ) -> list[tuple[int, struct.Struct, list[tuple[ModbusRegister, tuple[str, ...] | None, int]]]] | None:
        """One struct per block when every register has the usual layout and the registers come
        in address order without overlapping (the output keeps the registers' order); else None."""
        out: list[tuple[int, struct.Struct, list[tuple[ModbusRegister, tuple[str, ...] | None, int]]]] = []
        fmt = ""
        end = 0
        current: int | None = None
        fields: list[tuple[ModbusRegister, tuple[str, ...] | None, int]] = []
        for reg, start, off, st, enum in self._plan:
            if st is None:
                return None
            if start != current:
                if current is not None:
                    if start < current:
                        return None
                    out.append((current, struct.Struct(">" + fmt), fields))
                current, fmt, end, fields = start, "", 0, []
            if off < end:
                return None
            fmt += f"{off - end}x{_STRUCT[reg.type]}" if off > end else _STRUCT[reg.type]
            end = off + 2 * REGISTER_COUNT[reg.type]
            divisor = _decimal_divisor(reg.scale) if reg.type in _INT32_TYPES else 0
            fields.append((reg, enum, divisor))
        if current is not None:
            out.append((current, struct.Struct(">" + fmt), fields))
        return out

    def decode(self, data: Mapping[int, bytes]) -> dict[str, Value]:
        """``field -> value`` from ``start -> raw register bytes`` (big-endian words as received).

        Raises:
            ValueError: an enum index out of range.
        """
        out: dict[str, Value] = {}
        if self._blocks is not None:
            for start, block, fields in self._blocks:
                for (reg, enum, divisor), raw in zip(fields, block.unpack_from(data[start]), strict=True):
                    if enum is not None:
                        if not 0 <= raw < len(enum):
                            raise ValueError(f"{reg.field}: raw value {raw} has no name in {reg.enum}")
                        out[reg.field] = enum[raw]
                    elif divisor:
                        out[reg.field] = raw / divisor
                    else:
                        out[reg.field] = raw if reg.scale == 1.0 else float(round(raw * reg.scale, 6))
            return out
        for reg, start, off, st, enum in self._plan:
            if st is None:
                n = REGISTER_COUNT[reg.type]
                out[reg.field] = decode_register(struct.unpack_from(f">{n}H", data[start], off), reg)
                continue
            value: int = st.unpack_from(data[start], off)[0]
            if enum is not None:
                if not 0 <= value < len(enum):
                    raise ValueError(f"{reg.field}: raw value {value} has no name in {reg.enum}")
                out[reg.field] = enum[value]
            else:
                out[reg.field] = value if reg.scale == 1.0 else float(round(value * reg.scale, 6))
        return out


def encode_value(value: float, reg: ModbusRegister) -> list[int]:
    """The inverse of :func:`decode_register` for numbers (tests and the doctor's examples)."""
    raw_value: float | int = value / reg.scale
    if reg.type != "float32":
        raw_value = round(raw_value)
    raw = struct.pack(">" + _STRUCT[reg.type], raw_value)
    words = [int.from_bytes(raw[i : i + 2], reg.byte_order) for i in range(0, len(raw), 2)]
    return words if reg.word_order == "big" else list(reversed(words))
