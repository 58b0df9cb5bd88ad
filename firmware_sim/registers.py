"""The Modbus register maps (holding registers, big-endian, high word first): pure encoding.

Machine (14 registers)::

    0      state            uint16   0 off, 1 idle, 2 running, 3 fault, 4 setup
    1      spindle_temp_c   int16    x 0.1
    2      motor_temp_c     int16    x 0.1
    3      vibration_mm_s   uint16   x 0.01
    4      spindle_load_pct uint16   x 0.1
    5-9    reserved (0)
    10-11  parts_total      uint32
    12-13  rejects_total    uint32

Energy meter (12 registers)::

    0-1 power_kw float32; 2-3 voltage_v float32; 4-5 current_a float32; 6-7 power_factor float32;
    8-11 energy_wh uint64 (energy_kwh = energy_wh * 0.001)

Environment sensor (5 registers)::

    0 temp_c int16 x 0.1; 1 humidity_pct uint16 x 0.1; 2 pm25_ug_m3 uint16 x 0.1;
    3 noise_dba uint16 x 0.1; 4 co2_ppm uint16
"""

from __future__ import annotations

import struct
from typing import Final

from firmware_sim.models.energy import EnergyModel
from firmware_sim.models.environment import EnvironmentModel
from firmware_sim.models.machine import STATE_CODES, MachineModel

MACHINE_REGISTERS: Final = 14
ENERGY_REGISTERS: Final = 12
ENVIRONMENT_REGISTERS: Final = 5


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def _i16(value: float) -> int:
    return max(-0x8000, min(0x7FFF, round(value))) & 0xFFFF


def _words(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def u32_words(value: int) -> list[int]:
    """A uint32 as two registers, high word first (wraps at 2**32 like a PLC counter)."""
    return _words(struct.pack(">I", value & 0xFFFFFFFF))


def u64_words(value: int) -> list[int]:
    """A uint64 as four registers, high word first."""
    return _words(struct.pack(">Q", value & 0xFFFFFFFFFFFFFFFF))


def f32_words(value: float) -> list[int]:
    """An IEEE-754 float32 as two registers, high word first."""
    return _words(struct.pack(">f", value))


def machine_registers(m: MachineModel) -> list[int]:
    """Registers 0-13 of a machine PLC."""
    return [
        STATE_CODES[m.state],
        _i16(m.spindle_temp_c * 10.0),
        _i16(m.motor_temp_c * 10.0),
        _u16(m.vibration_mm_s * 100.0),
        _u16(m.spindle_load_pct * 10.0),
        0,
        0,
        0,
        0,
        0,
        *u32_words(m.parts_total),
        *u32_words(m.rejects_total),
    ]


def energy_registers(e: EnergyModel) -> list[int]:
    """Registers 0-11 of an energy meter."""
    return [
        *f32_words(e.power_kw),
        *f32_words(e.voltage_v),
        *f32_words(e.current_a),
        *f32_words(e.power_factor),
        *u64_words(int(e.energy_wh)),
    ]


def environment_registers(s: EnvironmentModel) -> list[int]:
    """Registers 0-4 of an environment sensor."""
    return [
        _i16(s.temp_c * 10.0),
        _u16(s.humidity_pct * 10.0),
        _u16(s.pm25_ug_m3 * 10.0),
        _u16(s.noise_dba * 10.0),
        _u16(s.co2_ppm),
    ]
