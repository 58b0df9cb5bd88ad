"""The agent's Modbus TCP connection against scripted peers: what a well-behaved device never sends.

The happy path and Modbus exception answers run against pymodbus servers in test_collectors.py;
here a loopback TCP server answers each request with a script (split frames, stale answers,
garbage, silence, a dropped connection), and the bus must turn each into the right reading or
the right ``DeviceError``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest

from edge_agent.errors import DeviceError
from tests.edge_agent.modbus_peers import REGISTERS, Peer, Script, answer, request


def words(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


async def test_answers_split_into_single_bytes_and_a_stale_answer_first(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            tid, unit, _address, count = await request(reader)
            # An answer to an earlier request (another tid) comes first and must be skipped.
            frame = answer((tid - 1) & 0xFFFF, unit, [0] * count) + answer(tid, unit, REGISTERS[:count])
            for i in range(len(frame)):
                writer.write(frame[i : i + 1])
                await writer.drain()

    p = await peer(script)
    bus = p.bus()
    try:
        for _ in range(3):
            assert words(await bus.read_holding_bytes(0, 14, unit=1, timeout_s=2.0)) == REGISTERS
        assert words(await bus.read_holding_bytes(0, 2, unit=7, timeout_s=2.0)) == REGISTERS[:2]
        assert p.connections == 1
    finally:
        await bus.release()


async def test_a_silent_device_times_out_and_the_next_request_uses_a_new_connection(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            tid, unit, _address, count = await request(reader)
            if n > 1:  # the first connection never answers
                writer.write(answer(tid, unit, REGISTERS[:count]))

    p = await peer(script)
    bus = p.bus()
    try:
        with pytest.raises(DeviceError, match=r"no answer from unit 1 at 127\.0\.0\.1:\d+ within 0\.2 s\Z"):
            await bus.read_holding_bytes(0, 14, unit=1, timeout_s=0.2)
        assert words(await bus.read_holding_bytes(0, 14, unit=1, timeout_s=2.0)) == REGISTERS
        assert p.connections == 2
    finally:
        await bus.release()


async def test_a_shorter_timeout_after_a_longer_one_still_holds(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        tid, unit, _address, count = await request(reader)
        writer.write(answer(tid, unit, REGISTERS[:count]))  # the first request only
        await request(reader)
        await reader.read()

    p = await peer(script)
    bus = p.bus()
    loop = asyncio.get_running_loop()
    try:
        await bus.read_holding_bytes(0, 14, unit=1, timeout_s=30.0)  # arms the watchdog 30 s ahead
        start = loop.time()
        with pytest.raises(DeviceError, match=r"within 0\.2 s\Z"):
            await bus.read_holding_bytes(0, 14, unit=1, timeout_s=0.2)
        assert loop.time() - start < 5.0
    finally:
        await bus.release()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (struct.pack(">HHH", 1, 7, 3) + b"\x01\x03\x00", "not a Modbus TCP answer"),
        (struct.pack(">HHH", 1, 0, 999), "not a Modbus TCP answer"),
        (answer(1, 1, REGISTERS[:3]), "malformed answer to a read of 14 registers"),
        (b"", "connection closed by the device"),
    ],
    ids=["protocol-id", "length", "wrong-count", "hang-up"],
)
async def test_broken_answers_are_device_errors_and_drop_the_connection(
    peer: Callable[[Script], Awaitable[Peer]], reply: bytes, message: str
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        tid, unit, _address, count = await request(reader)
        assert tid == 1
        if n == 1:
            writer.write(reply)
            await writer.drain()
            if not reply:
                return  # hang up
            await reader.read()
        else:
            writer.write(answer(tid, unit, REGISTERS[:count]))
            await reader.read()

    p = await peer(script)
    bus = p.bus()
    try:
        with pytest.raises(
            DeviceError, match=rf"Modbus request to unit 1 at 127\.0\.0\.1:\d+ failed: {message}\Z"
        ):
            await bus.read_holding_bytes(0, 14, unit=1, timeout_s=2.0)
        assert words(await bus.read_holding_bytes(0, 14, unit=1, timeout_s=2.0)) == REGISTERS
        assert p.connections == 2
    finally:
        await bus.release()
