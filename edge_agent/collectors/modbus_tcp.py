"""Modbus TCP reads of holding registers (function 3) on one non-blocking socket.

The agent's hot path: at 200 polls/s pymodbus alone cost about 4 % of a core on the development
machine (``bench/edge.py``, poll-only floor), twice the agent's whole budget. It is used for
``transport = "tcp"`` only; RTU on a serial port and RTU over TCP (CRCs, frame search, serial
settings) stay with pymodbus.

There is at most one request on the connection: the caller holds the bus lock
(:class:`edge_agent.collectors.modbus_bus.Bus`) or chains the requests of one tick
(:mod:`edge_agent.collectors.modbus_tick`). A request is sent with
:meth:`ModbusTcpConnection.send_read`, whose callback receives the answer (or the error), so a
tick's requests to many devices need no task or future each; :meth:`ModbusTcpConnection.read_holding`
awaits one request. Answers are read in one of two ways:

* *watched* (the default): the socket's read event is registered with the event loop, and every
  arriving answer is read at once (also a hang-up while idle is noticed);
* *collected* (:meth:`ModbusTcpConnection.watch` ``(False)``, the tick group): nothing is
  registered; the owner calls :meth:`ModbusTcpConnection.receive` for all its connections in one
  pass a moment after sending, so the answers of one tick cost the event loop one wake-up instead
  of one each (each wake-up costs more than the Python work of an answer on a loaded machine), and
  watches only the connections whose answer is not in yet.

Each request has its device's timeout, kept by one watchdog timer per connection that is
re-armed only when it fires (not one timer per request, created and cancelled 200 times a second
in the event loop's heap).

Frame (Modbus Application Protocol over TCP, big-endian)::

    request:  tid u16 | protocol 0 u16 | length 6 u16 | unit u8 | fc 3 u8 | address u16 | count u16
    response: tid u16 | protocol 0 u16 | length u16   | unit u8 | fc 3 u8 | byte count u8 | data
    error:    ...                                     | unit u8 | fc 0x83 u8 | exception code u8

An answer whose transaction id is not the pending request's (a late answer to a request that
timed out) is skipped; anything that is not Modbus TCP closes the connection. Answers are
received into one fixed buffer (``recv_into``), never a new ``bytes`` per read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any, Final, TypeAlias

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


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (``OSError`` when it cannot be made)."""
    loop = asyncio.get_running_loop()
    infos: list[tuple[Any, ...]]
    try:
        ipaddress.ip_address(host)
        infos = [
            (socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, 0, "", (host, port))
        ]
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error


class ModbusTcpConnection:
    """One TCP connection to a Modbus TCP server; one request at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = sock.fileno()
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
        self._watching = False
        self.closed = False
        self.last_io_s = self._loop.time()
        """When the connection last sent or received, on the event loop's clock."""
        self.watch(True)

    @classmethod
    async def open(cls, host: str, port: int) -> ModbusTcpConnection:
        """Connect (the caller bounds the time); ``OSError`` when it cannot. The connection is watched."""
        return cls(await _connect(host, port))

    @property
    def pending(self) -> bool:
        """Whether a request waits for its answer."""
        return self._pending is not None

    @property
    def watching(self) -> bool:
        """Whether answers are read as they arrive (see :meth:`watch`)."""
        return self._watching

    def idle_s(self) -> float:
        """Seconds since the connection last sent or received."""
        return self._loop.time() - self.last_io_s

    def watch(self, on: bool) -> None:
        """Read answers as they arrive (register the read event) or only in :meth:`receive`."""
        if on == self._watching or self.closed:
            return
        self._watching = on
        if on:
            self._loop.add_reader(self._fd, self.receive)
        else:
            self._loop.remove_reader(self._fd)

    def receive(self) -> None:
        """Read and handle whatever has arrived, without waiting (an answer calls its callback)."""
        if self.closed:
            return
        try:
            nbytes = self._sock.recv_into(self._view[self._filled :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(ModbusTcpError(f"connection lost: {exc}"))
            return
        if nbytes == 0:
            self._lost(ModbusTcpError("connection closed by the device"))
            return
        self.last_io_s = self._loop.time()
        self._parse(nbytes)

    def _lost(self, exc: Exception) -> None:
        answer, self._pending = self._pending, None
        self.close()
        if answer is not None:
            answer(exc)

    def _parse(self, nbytes: int) -> None:
        buf, end = self._buf, self._filled + nbytes
        pos = 0
        while end - pos >= _HEADER.size:
            tid, proto, length = _HEADER.unpack_from(buf, pos)
            if proto != 0 or not 3 <= length <= _MAX_LENGTH:
                self._filled = 0
                self._lost(ModbusTcpError("not a Modbus TCP answer"))
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
        if self.closed:
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
        frame = _REQUEST.pack(tid, 0, 6, unit, 3, address, count)
        try:
            sent = self._sock.send(frame)
        except OSError as exc:
            sent, error = 0, f"connection lost: {exc}"
        else:
            error = "" if sent == len(frame) else "the device does not take requests (send buffer full)"
        if error:
            self._pending = None
            self.close()
            raise ModbusTcpError(error)
        self.last_io_s = loop.time()

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

    def close(self) -> None:
        """Close the connection; a pending request fails (from the event loop, not from this call)."""
        if self.closed:
            return
        self.watch(False)
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._sock.close()
        answer, self._pending = self._pending, None
        if answer is not None:
            self._loop.call_soon(answer, ModbusTcpError("connection closed"))


def _check_pdu(buf: bytearray, start: int, stop: int, count: int) -> bytes | Exception:
    """The register bytes of a read answer ``buf[start:stop]`` (unit | function | byte count | data),
    or the error it stands for."""
    function = buf[start + 1]
    if function == 0x83 and stop - start == 3:
        return ModbusExceptionAnswer(buf[start + 2])
    if function != 3 or buf[start + 2] != 2 * count or stop - start != 3 + 2 * count:
        return ModbusTcpError(f"malformed answer to a read of {count} registers")
    return bytes(buf[start + 3 : stop])
