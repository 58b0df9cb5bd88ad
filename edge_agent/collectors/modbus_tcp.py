"""Modbus TCP reads of holding registers (function 3) on one ``asyncio.BufferedProtocol`` connection.

The agent's hot path: at 200 polls/s pymodbus alone cost about 4 % of a core on the development
machine (``bench/edge.py``, poll-only floor), twice the agent's whole budget; this connection
does the same requests for about half of that (``bench/edge_modbus.py``). It is used for ``transport = "tcp"`` only;
RTU on a serial port and RTU over TCP (CRCs, frame search, serial settings) stay with pymodbus.
There is at most one request on the connection: the caller holds the bus lock
(:class:`edge_agent.collectors.modbus_bus.Bus`) or chains the requests of one tick
(:mod:`edge_agent.collectors.modbus_tick`). A request is sent with :meth:`ModbusTcpConnection.send_read`,
whose callback receives the answer (or the error) straight from the event loop's read event, so
a tick's requests to many devices need no task or future each; :meth:`ModbusTcpConnection.read_holding`
awaits one request. Each request has its device's timeout, kept by one
watchdog timer per connection that is re-armed only when it fires (not one timer per request,
created and cancelled 200 times a second in the event loop's heap).

Frame (Modbus Application Protocol over TCP, big-endian)::

    request:  tid u16 | protocol 0 u16 | length 6 u16 | unit u8 | fc 3 u8 | address u16 | count u16
    response: tid u16 | protocol 0 u16 | length u16   | unit u8 | fc 3 u8 | byte count u8 | data
    error:    ...                                     | unit u8 | fc 0x83 u8 | exception code u8

An answer whose transaction id is not the pending request's (a late answer to a request that
timed out) is skipped; anything that is not Modbus TCP closes the connection. Answers are
received into one fixed buffer (``asyncio.BufferedProtocol``): a plain ``Protocol`` gets a new
256 KiB ``bytes`` from asyncio for every read, three memory-mapping system calls per poll.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Final, TypeAlias

_REQUEST: Final = struct.Struct(">HHHBBHH")
_HEADER: Final = struct.Struct(">HHH")
_MAX_LENGTH: Final = 254
"""The MBAP length field's largest value: unit id plus a PDU of at most 253 bytes."""
_BUFFER_BYTES: Final = 1024
"""Receive buffer: holds more than a whole frame (6 + 254 bytes) plus the start of the next."""


Answer: TypeAlias = Callable[[bytes | Exception], None]
"""Receives the ``2 * count`` register bytes of a read, or its error (called exactly once)."""


class ModbusTcpError(Exception):
    """The connection broke or the peer does not speak Modbus TCP (the caller drops the connection)."""


class ModbusExceptionAnswer(Exception):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ModbusTcpConnection(asyncio.BufferedProtocol):
    """One TCP connection to a Modbus TCP server; one request at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray(_BUFFER_BYTES)
        self._view = memoryview(self._buf)
        self._filled = 0
        self._tid = 0
        self._pending: Answer | None = None
        self._pending_key = (0, 0)
        self._pending_count = 0
        self._deadline = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> ModbusTcpConnection:
        """Connect (the caller bounds the time); ``OSError`` when it cannot."""
        _, conn = await asyncio.get_running_loop().create_connection(cls, host, port)
        return conn

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        self._fail(ModbusTcpError(f"connection lost: {exc}" if exc else "connection closed by the device"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        buf, end = self._buf, self._filled + nbytes
        pos = 0
        while end - pos >= _HEADER.size:
            tid, proto, length = _HEADER.unpack_from(buf, pos)
            if proto != 0 or not 3 <= length <= _MAX_LENGTH:
                self._fail(ModbusTcpError("not a Modbus TCP answer"))
                self.close()
                self._filled = 0
                return
            stop = pos + _HEADER.size + length
            if stop > end:
                break
            answer = self._pending
            if answer is not None and (tid, buf[pos + _HEADER.size]) == self._pending_key:
                self._pending = None
                answer(_check_pdu(buf, pos + _HEADER.size, stop, self._pending_count))
            pos = stop
        if pos:
            # Same-length slice assignment: the buffer never changes size (``_view`` exports it).
            buf[: end - pos] = buf[pos:end]
        self._filled = end - pos

    # ------------------------------------------------------------------ requests

    def send_read(self, address: int, count: int, *, unit: int, timeout_s: float, answer: Answer) -> None:
        """Send a read of ``count`` holding registers of ``unit`` from ``address``.

        ``answer`` is called once, from the event loop (never from this call), with the ``2 * count``
        register bytes or with the error: ``TimeoutError`` (no answer within ``timeout_s``; the
        caller drops the connection), :class:`ModbusExceptionAnswer`, or :class:`ModbusTcpError`
        (the connection broke, or the answer is not a read of ``count`` registers).

        Raises:
            ModbusTcpError: the connection is closed, or a request is pending already.
        """
        transport = self._transport
        if transport is None or self.closed:
            raise ModbusTcpError("connection closed")
        if self._pending is not None:
            raise ModbusTcpError("a request is pending on this connection")
        self._tid = tid = (self._tid + 1) & 0xFFFF
        loop = self._loop
        self._pending, self._pending_key, self._pending_count = answer, (tid, unit), count
        self._deadline = deadline = loop.time() + timeout_s
        watchdog = self._watchdog
        if watchdog is None or watchdog.when() > deadline:
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._check_deadline)
        transport.write(_REQUEST.pack(tid, 0, 6, unit, 3, address, count))

    async def read_holding(self, address: int, count: int, *, unit: int, timeout_s: float) -> bytes:
        """The ``2 * count`` bytes of ``count`` holding registers of ``unit`` from ``address``.

        Raises:
            TimeoutError: no answer within ``timeout_s`` (the caller drops the connection).
            ModbusExceptionAnswer: the device answered with an exception code.
            ModbusTcpError: the connection broke, or the answer is not a read of ``count`` registers.
        """
        fut: asyncio.Future[bytes] = self._loop.create_future()

        def settle(result: bytes | Exception) -> None:
            if fut.done():
                return
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

        self.send_read(address, count, unit=unit, timeout_s=timeout_s, answer=settle)
        try:
            return await fut
        finally:
            if self._pending is settle:
                self._pending = None

    def _check_deadline(self) -> None:
        self._watchdog = None
        answer = self._pending
        if answer is None:
            return
        if self._loop.time() >= self._deadline:
            self._pending = None
            answer(TimeoutError())
        else:
            self._watchdog = self._loop.call_at(self._deadline, self._check_deadline)

    def _fail(self, exc: Exception) -> None:
        answer, self._pending = self._pending, None
        if answer is not None:
            answer(exc)

    def close(self) -> None:
        """Close the connection (a pending request fails)."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.close()


def _check_pdu(buf: bytearray, start: int, stop: int, count: int) -> bytes | Exception:
    """The register bytes of a read answer ``buf[start:stop]`` (unit | function | byte count | data),
    or the error it stands for."""
    function = buf[start + 1]
    if function == 0x83 and stop - start == 3:
        return ModbusExceptionAnswer(buf[start + 2])
    if function != 3 or buf[start + 2] != 2 * count or stop - start != 3 + 2 * count:
        return ModbusTcpError(f"malformed answer to a read of {count} registers")
    return bytes(buf[start + 3 : stop])
