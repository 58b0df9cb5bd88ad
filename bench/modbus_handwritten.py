"""The edge agent's former Modbus TCP client, kept as the baseline of ``bench/edge_modbus.py``.

Function 3 (read holding registers) only, one request at a time over one asyncio stream per
device. The agent now uses pymodbus for Modbus TCP, RTU and RTU over TCP; the bench measured
this client at two thirds of pymodbus' CPU per Modbus TCP poll (docs/edge-agent.md, "Modbus:
why pymodbus").

Frame (Modbus Application Protocol over TCP, big-endian)::

    request:  tid u16 | protocol 0 u16 | length 6 u16 | unit u8 | fc 3 u8 | address u16 | count u16
    response: tid u16 | protocol 0 u16 | length u16   | unit u8 | fc 3 u8 | byte count u8 | data
    error:    ...                                     | unit u8 | fc 0x83 u8 | exception code u8
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Final

from edge_agent.errors import DeviceError

_HEADER: Final = struct.Struct(">HHHB")
_REQUEST: Final = struct.Struct(">HHHBBHH")
EXCEPTIONS: Final = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusTcpClient:
    """One connection to one Modbus TCP server; reconnects on the next request after a failure."""

    def __init__(self, host: str, port: int, *, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tid = 0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as exc:
                raise DeviceError(
                    f"no Modbus TCP answer at {self.name}: {exc or type(exc).__name__}"
                ) from exc
        return self._reader, self._writer

    async def read_holding_registers(self, address: int, count: int, *, unit: int) -> list[int]:
        """Read ``count`` holding registers from ``address`` of ``unit``.

        Raises:
            DeviceError: connection, timeout, framing or a Modbus exception response.
        """
        data = await self.read_holding_bytes(address, count, unit=unit)
        return list(struct.unpack(f">{count}H", data))

    async def read_holding_bytes(self, address: int, count: int, *, unit: int) -> bytes:
        """Like :meth:`read_holding_registers`, the ``2 * count`` raw bytes (big-endian words)."""
        reader, writer = await self._connect()
        self._tid = (self._tid + 1) & 0xFFFF
        tid = self._tid
        try:
            async with asyncio.timeout(self.timeout_s):
                writer.write(_REQUEST.pack(tid, 0, 6, unit, 3, address, count))
                head = await reader.readexactly(_HEADER.size)
                rtid, proto, length, runit = _HEADER.unpack(head)
                if proto != 0 or not 2 <= length <= 260:
                    raise DeviceError(f"{self.name}: not a Modbus TCP answer")
                pdu = await reader.readexactly(length - 1)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self.aclose()
            why = "timeout" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            raise DeviceError(f"{self.name}: Modbus request failed ({why})") from exc
        except DeviceError:
            await self.aclose()
            raise
        if rtid != tid or runit != unit:
            await self.aclose()
            raise DeviceError(f"{self.name}: answer to another request (tid {rtid}, unit {runit})")
        if pdu[0] == 0x83:
            code = pdu[1] if len(pdu) > 1 else 0
            raise DeviceError(
                f"{self.name}: Modbus exception {code} ({EXCEPTIONS.get(code, 'unknown')}) reading {count} "
                f"registers at {address} of unit {unit}"
            )
        if pdu[0] != 3 or len(pdu) < 2 or pdu[1] != 2 * count or len(pdu) != 2 + 2 * count:
            await self.aclose()
            raise DeviceError(f"{self.name}: malformed answer to a read of {count} registers")
        return pdu[2:]

    async def aclose(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
