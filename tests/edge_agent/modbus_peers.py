"""Scripted Modbus TCP peers: loopback servers that answer each request as a test script says."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

from edge_agent.collectors.modbus_bus import Bus
from settings.edge import ModbusBus

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
"""Serves one connection; the int counts the connections so far (1 for the first)."""

REGISTERS = list(range(100, 114))


def answer(tid: int, unit: int, registers: list[int]) -> bytes:
    pdu = struct.pack(f">BBB{len(registers)}H", unit, 3, 2 * len(registers), *registers)
    return struct.pack(">HHH", tid, 0, len(pdu)) + pdu


async def request(reader: asyncio.StreamReader) -> tuple[int, int, int, int]:
    """``(tid, unit, address, count)`` of one read request."""
    tid, proto, length, unit, fc, address, count = struct.unpack(">HHHBBHH", await reader.readexactly(12))
    assert (proto, length, fc) == (0, 6, 3)
    return tid, unit, address, count


class Peer:
    """A loopback TCP server running ``script`` on every connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer, self.connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up, as it does after a timeout
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def bus(self) -> Bus:
        return Bus(ModbusBus(id="tcp", transport="tcp", host="127.0.0.1", port=self.port), timeout_s=0.5)
