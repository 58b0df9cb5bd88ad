"""A Modbus TCP server for one simulated device (pymodbus), fed live from a register function.

Every device gets its own server and port, as a real PLC or meter has its own IP address; many
servers share one asyncio loop. Registers are holding registers of unit (slave) id 1, read-only:
each read request calls ``registers()`` (which advances the device model to the current simulated
time) and answers from that snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_sim.errors import DeviceStartError

UNIT_ID: Final = 1
READ_HOLDING: Final = 3
_log = logging.getLogger(__name__)


class ModbusDevice:
    """One device's Modbus TCP server on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self, *, name: str, count: int, registers: Callable[[], list[int]], host: str = "127.0.0.1"
    ) -> None:
        self.name = name
        self.host = host
        self.port = 0
        self._count = count
        self._registers = registers
        self._server: ModbusTcpServer | None = None

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None or function_code != READ_HOLDING:
            return ExcCodes.ILLEGAL_FUNCTION
        current_registers[: self._count] = self._registers()
        return None

    async def start(self, port: int = 0) -> int:
        """Start listening; return the bound port.

        Raises:
            DeviceStartError: the address cannot be bound.
        """
        device = SimDevice(
            id=UNIT_ID,
            simdata=[SimData(address=0, count=self._count, values=0, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        server = ModbusTcpServer(device, address=(self.host, port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise DeviceStartError(
                f"Modbus device {self.name}: cannot listen on {self.host}:{port}: {exc}"
            ) from exc
        transport: Any = server.transport
        self.port = int(transport.sockets[0].getsockname()[1])
        self._server = server
        _log.debug("modbus device %s on %s:%d", self.name, self.host, self.port)
        return self.port

    async def aclose(self) -> None:
        """Stop listening and drop connections."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
