"""Modbus lines: Modbus TCP, RTU on a serial port, RTU over TCP; one request at a time.

A *bus* is whatever several devices share: an RS-485 line behind one serial port, a serial
gateway that forwards RTU frames over TCP, or a Modbus TCP endpoint. Each bus owns one client
(for Modbus TCP the agent's own :mod:`~edge_agent.collectors.modbus_tcp` connection, half of
pymodbus' CPU per poll; pymodbus for both RTU transports) and one lock, so the devices on it
take turns: a request is sent only after the previous answer arrived (or its device's timeout
passed), and on a serial line after the 3.5 character times of silence that RTU framing needs.
The timeout is the requesting device's own.

Connections open on the first request and again after any failure; the agent's per-device
backoff decides when that is.
"""

from __future__ import annotations

import asyncio
import gc
import os
import struct
import termios
import time
from typing import TYPE_CHECKING, Final

from edge_agent.collectors.modbus_tcp import ModbusExceptionAnswer, ModbusTcpConnection, ModbusTcpError
from edge_agent.errors import DeviceError
from settings.edge import ModbusBus as BusSettings
from settings.edge import ModbusDevice

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

EXCEPTIONS: Final = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
"""Modbus exception codes and their names (the answer's ``exception_code``)."""

_FAST_BAUD: Final = 19200
_FAST_SILENCE_S: Final = 0.00175


def silent_interval_s(settings: BusSettings) -> float:
    """The pause RTU framing needs between frames: 3.5 characters, a fixed 1.75 ms above 19200 bit/s.

    A character is a start bit, the data bits, the parity bit if any and the stop bits
    (Modbus over serial line, section 2.5.1.1). TCP transports need none.
    """
    if settings.transport != "rtu":
        return 0.0
    if settings.baudrate > _FAST_BAUD:
        return _FAST_SILENCE_S
    bits = 1 + settings.bytesize + (settings.parity != "N") + settings.stopbits
    return 3.5 * bits / settings.baudrate


class Bus:
    """One shared Modbus line with its client and its turn-taking lock.

    Args:
        settings: the bus (a device's own Modbus TCP endpoint becomes a ``tcp`` bus).
        timeout_s: the longest timeout of its devices (each request is cut at its own device's
            timeout).
    """

    def __init__(self, settings: BusSettings, *, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._pause_s = silent_interval_s(settings) + settings.gap_ms / 1000.0
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._tcp: ModbusTcpConnection | None = None
        self._users = 0
        self._quiet_until = 0.0

    @property
    def name(self) -> str:
        """Where the bus is, for messages: ``/dev/ttyUSB0`` or ``host:port``."""
        s = self.settings
        return s.serial_port if s.transport == "rtu" else f"{s.host}:{s.port}"

    def attach(self) -> None:
        """Count one more device using the bus (each calls :meth:`release` when done)."""
        self._users += 1

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # Imported on the first connection, not with the module: a gateway without Modbus RTU
        # devices never loads pymodbus (1.5 MB of memory, bench/edge_modbus.py).
        from pymodbus import FramerType
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        s = self.settings
        # retries=0 and reconnect_delay=0: one attempt per poll, the agent's backoff does the rest.
        # pymodbus' own timeout is a second longer than any device's, so that the device's
        # timeout (asyncio.timeout in read_holding_bytes) always ends a request first.
        timeout_s = self.timeout_s + 1.0
        if s.transport == "rtu":
            return AsyncModbusSerialClient(
                s.serial_port,
                framer=FramerType.RTU,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        return AsyncModbusTcpClient(
            s.host, port=s.port, framer=FramerType.RTU, timeout=timeout_s, retries=0, reconnect_delay=0
        )

    def _check_serial_port(self) -> None:
        port = self.settings.serial_port
        if not os.path.exists(port):
            raise DeviceError(
                f"serial port {port} does not exist (bus {self.settings.id})",
                fix="plug in the RS-485 adapter and check its name with `ls -l /dev/serial/by-id/`, then set "
                f"serial_port of [[collectors.buses]] id = {self.settings.id!r} to it",
            )
        if not os.access(port, os.R_OK | os.W_OK):
            raise DeviceError(
                f"no permission to open serial port {port} (bus {self.settings.id})",
                fix=f"add the agent's user to the group of {port} (usually dialout: "
                "`usermod -aG dialout parkwatch`, then restart the agent)",
            )

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._close()
        if self.settings.transport == "rtu":
            self._check_serial_port()
        client = self._new_client()
        refused = ""
        try:
            connected = await client.connect()
        except termios.error as exc:
            # The port refuses a setting (a pseudo-terminal has no parity, for one). pymodbus has
            # opened and locked the port by then and drops it without closing it: the open port
            # lives on in a reference cycle through this exception's traceback. So keep only the
            # message, let the exception go, and collect the cycle, or the port stays locked.
            refused = str(exc)
            connected = False
        if refused:
            client.close()
            gc.collect()
            s = self.settings
            raise DeviceError(
                f"serial port {s.serial_port} refuses {s.baudrate} bit/s {s.bytesize}{s.parity}{s.stopbits} "
                f"(bus {s.id}): {refused}",
                fix="set baudrate, parity, stopbits and bytesize of the bus to what the adapter and the "
                "devices support (the devices' manuals give them)",
            )
        if not connected:
            client.close()
            if self.settings.transport == "rtu":
                raise DeviceError(
                    f"cannot open serial port {self.name} (bus {self.settings.id})",
                    fix="is another program holding the port? (`fuser` names it) check serial_port",
                )
            raise DeviceError(f"no Modbus RTU-over-TCP answer at {self.name}: cannot connect")
        self._client = client
        return client

    async def read_holding_bytes(self, address: int, count: int, *, unit: int, timeout_s: float) -> bytes:
        """Read ``count`` holding registers of ``unit`` from ``address``: ``2 * count`` big-endian bytes.

        Waits for the bus first; ``timeout_s`` covers connecting, sending and the answer.

        Raises:
            DeviceError: no connection, no answer within ``timeout_s``, or a Modbus exception.
        """
        if self.settings.transport == "tcp":
            return await self._read_tcp(address, count, unit=unit, timeout_s=timeout_s)
        from pymodbus.exceptions import ModbusException

        async with self._lock:
            wait_s = self._quiet_until - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            try:
                async with asyncio.timeout(timeout_s):
                    client = await self._connected()
                    answer = await client.read_holding_registers(address, count=count, device_id=unit)
            except TimeoutError as exc:
                # The answer may still come: drop the connection so it cannot be taken for the
                # answer to the next request (a serial port is reopened the same way).
                self._close()
                raise DeviceError(
                    f"no answer from unit {unit} at {self.name} within {timeout_s:g} s"
                ) from exc
            except ModbusException as exc:
                self._close()
                raise DeviceError(f"Modbus request to unit {unit} at {self.name} failed: {exc}") from exc
            finally:
                self._quiet_until = time.monotonic() + self._pause_s
        if answer.isError():
            code = answer.exception_code
            raise DeviceError(
                f"{self.name}: Modbus exception {code} ({EXCEPTIONS.get(code, 'unknown')}) reading {count} "
                f"registers at {address} of unit {unit}"
            )
        registers = answer.registers
        if len(registers) != count:
            raise DeviceError(f"{self.name}: malformed answer to a read of {count} registers")
        return struct.pack(f">{count}H", *registers)

    async def _read_tcp(self, address: int, count: int, *, unit: int, timeout_s: float) -> bytes:
        """:meth:`read_holding_bytes` on the Modbus TCP connection (same errors, same texts)."""
        async with self._lock:
            try:
                conn, remaining_s = await self.tcp_connection(unit=unit, timeout_s=timeout_s)
                return await conn.read_holding(address, count, unit=unit, timeout_s=remaining_s)
            except (TimeoutError, ModbusExceptionAnswer, ModbusTcpError) as exc:
                raise self.tcp_error(exc, address, count, unit=unit, timeout_s=timeout_s) from exc

    def live_tcp(self) -> ModbusTcpConnection | None:
        """The open Modbus TCP connection, if there is one."""
        conn = self._tcp
        return conn if conn is not None and not conn.closed else None

    async def tcp_connection(self, *, unit: int, timeout_s: float) -> tuple[ModbusTcpConnection, float]:
        """The Modbus TCP connection, opened within ``timeout_s`` if there is none, and the time left.

        The caller has the bus to itself (holds the lock, or is the tick group owning the bus).

        Raises:
            DeviceError: the connection was refused, or not made within ``timeout_s``.
        """
        conn = self.live_tcp()
        if conn is not None:
            return conn, timeout_s
        self._close()
        start_s = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                conn = self._tcp = await ModbusTcpConnection.open(self.settings.host, self.settings.port)
        except OSError as exc:
            raise DeviceError(f"no Modbus TCP answer at {self.name}: cannot connect ({exc})") from exc
        except TimeoutError as exc:
            raise self.tcp_error(exc, 0, 0, unit=unit, timeout_s=timeout_s) from exc
        return conn, max(0.0, timeout_s - (time.monotonic() - start_s))

    def tcp_error(
        self,
        exc: Exception,
        address: int,
        count: int,
        *,
        unit: int,
        timeout_s: float,
    ) -> DeviceError:
        """The :class:`DeviceError` of a failed Modbus TCP read (``TimeoutError``,
        ``ModbusExceptionAnswer``, ``ModbusTcpError``); drops the connection unless the device
        answered (with an exception code)."""
        if isinstance(exc, ModbusExceptionAnswer):
            return DeviceError(
                f"{self.name}: Modbus exception {exc.code} ({EXCEPTIONS.get(exc.code, 'unknown')}) "
                f"reading {count} registers at {address} of unit {unit}"
            )
        # After a timeout the answer may still come: drop the connection so that it cannot be
        # taken for the answer to the next request.
        self._close()
        if isinstance(exc, TimeoutError):
            return DeviceError(f"no answer from unit {unit} at {self.name} within {timeout_s:g} s")
        return DeviceError(f"Modbus request to unit {unit} at {self.name} failed: {exc}")

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.close()

    async def release(self) -> None:
        """One device is done with the bus; the last one closes the connection."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self._close()


def tcp_bus(device: ModbusDevice) -> BusSettings:
    """The implicit ``tcp`` bus of a device given by ``host`` and ``port``."""
    return BusSettings(id="tcp", transport="tcp", host=device.host, port=device.port)


def open_buses(buses: list[BusSettings], devices: list[ModbusDevice]) -> dict[str, Bus]:
    """One :class:`Bus` per device id: devices of one bus, or of one TCP endpoint, share it."""
    by_id = {b.id: b for b in buses}
    shared: dict[tuple[str, str, int] | str, tuple[BusSettings, list[ModbusDevice]]] = {}
    for d in devices:
        if d.bus is not None:
            key: tuple[str, str, int] | str = d.bus
            settings = by_id[d.bus]
        else:
            key = ("tcp", d.host, d.port)
            settings = tcp_bus(d)
        shared.setdefault(key, (settings, []))[1].append(d)
    out: dict[str, Bus] = {}
    for settings, members in shared.values():
        bus = Bus(settings, timeout_s=max(d.timeout_s for d in members))
        for d in members:
            bus.attach()
            out[d.id] = bus
    return out
