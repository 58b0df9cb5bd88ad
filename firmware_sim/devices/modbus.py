"""Simulated Modbus devices (pymodbus), fed live from register functions.

* :class:`ModbusDevice`: one device's Modbus TCP server. Every device gets its own server and
  port, as a real PLC or meter has its own IP address; many servers share one asyncio loop.
* :class:`ModbusRtuLine`: an RS-485 line of several devices, one unit id each, speaking Modbus
  RTU on a serial port (in tests and the demo one end of a ``socat`` pseudo-terminal pair) or
  RTU over TCP (what a serial device server forwards).

Registers are holding registers, read-only, with the same maps as the TCP devices
(:mod:`firmware_sim.registers`): each read request calls ``registers()`` (which advances the
device model to the current simulated time) and answers from that snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
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


@dataclass(frozen=True, slots=True)
class RtuUnit:
    """One device on a simulated RS-485 line.

    Attributes:
        unit_id: its unit (slave) id, 1-247.
        count: holding registers from address 0.
        registers: the register snapshot function (as for :class:`ModbusDevice`).
    """

    unit_id: int
    count: int
    registers: Callable[[], list[int]]


@dataclass(frozen=True, slots=True)
class LineRequest:
    """One request the line answered: which unit, when it began and when the answer was ready."""

    unit_id: int
    start_s: float
    end_s: float


class ModbusRtuLine:
    """Several simulated devices on one RTU line, on a serial port or RTU over TCP.

    A unit id nobody has stays silent, as on a real line (the catch-all device 0 takes the
    request and its answer is never sent). ``answer_delay_s`` makes every device
    take that long to answer (a slow meter); ``requests`` logs each request (``time.monotonic``
    seconds), so a test can see whether a client ever had two requests on the line at once.
    """

    def __init__(
        self,
        *,
        name: str,
        units: list[RtuUnit],
        answer_delay_s: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.host = host
        self.port = 0
        self.serial_port = ""
        self.answer_delay_s = answer_delay_s
        self.requests: list[LineRequest] = []
        self._units = units
        self._unit_ids = frozenset(u.unit_id for u in units)
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    def _device(self, unit: RtuUnit) -> SimDevice:
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current_registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            start_s = time.monotonic()
            if set_values is not None or function_code != READ_HOLDING:
                return ExcCodes.ILLEGAL_FUNCTION
            if self.answer_delay_s > 0:
                await asyncio.sleep(self.answer_delay_s)
            current_registers[: unit.count] = unit.registers()
            self.requests.append(LineRequest(unit_id=unit.unit_id, start_s=start_s, end_s=time.monotonic()))
            return None

        return SimDevice(
            id=unit.unit_id,
            simdata=[SimData(address=0, count=unit.count, values=0, datatype=DataType.REGISTERS)],
            action=action,
        )

    def _devices(self) -> list[SimDevice]:
        nobody = SimDevice(id=0, simdata=[SimData(address=0, count=1, values=0, datatype=DataType.REGISTERS)])
        return [*(self._device(u) for u in self._units), nobody]

    def _silence_strangers(self, sending: bool, packet: bytes) -> bytes:
        """Drop the answers of the catch-all device: an RTU frame starts with its unit id."""
        if sending and packet and packet[0] not in self._unit_ids:
            return b""
        return packet

    async def start_serial(
        self,
        serial_port: str,
        *,
        baudrate: int = 9600,
        parity: Literal["N", "E", "O"] = "N",
        stopbits: int = 1,
        bytesize: int = 8,
    ) -> None:
        """Answer RTU frames on ``serial_port`` (e.g. one end of a socat pty pair).

        Raises:
            DeviceStartError: the port cannot be opened.
        """
        server = ModbusSerialServer(
            self._devices(),
            framer=FramerType.RTU,
            port=serial_port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            trace_packet=self._silence_strangers,
        )
        try:
            await server.serve_forever(background=True)
        except (RuntimeError, OSError, termios.error) as exc:
            raise DeviceStartError(
                f"Modbus RTU line {self.name}: cannot open {serial_port} with {baudrate} bit/s "
                f"{bytesize}{parity}{stopbits}: {exc}"
            ) from exc
        if not server.transport:
            raise DeviceStartError(
                f"Modbus RTU line {self.name}: cannot open {serial_port} (does it exist? is it in use?)"
            )
        self.serial_port = serial_port
        self._server = server
        _log.debug("modbus RTU line %s on %s", self.name, serial_port)

    async def start_tcp(self, port: int = 0) -> int:
        """Answer RTU frames over TCP on ``host:port`` (0 picks a free port); return the port.

        Raises:
            DeviceStartError: the address cannot be bound.
        """
        server = ModbusTcpServer(
            self._devices(),
            framer=FramerType.RTU,
            address=(self.host, port),
            trace_packet=self._silence_strangers,
        )
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise DeviceStartError(
                f"Modbus RTU line {self.name}: cannot listen on {self.host}:{port}: {exc}"
            ) from exc
        transport: Any = server.transport
        self.port = int(transport.sockets[0].getsockname()[1])
        self._server = server
        _log.debug("modbus RTU-over-TCP line %s on %s:%d", self.name, self.host, self.port)
        return self.port

    async def aclose(self) -> None:
        """Stop answering and release the port."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
