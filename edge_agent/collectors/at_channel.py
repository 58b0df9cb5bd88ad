"""AT command channels: a raw TCP socket (simulated or networked modems) or a serial device."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import select
import termios
import tty
from typing import Protocol
from urllib.parse import urlsplit

from edge_agent.collectors.at_parse import is_final
from edge_agent.errors import DeviceError

_MAX_ANSWER_BYTES = 16384


class ATChannel(Protocol):
    """Sends one AT command and returns the answer's lines (final result code included)."""

    async def command(self, cmd: str, *, timeout_s: float) -> list[str]: ...

    async def aclose(self) -> None: ...


def split_answer(lines: list[str]) -> tuple[list[str], str]:
    """Split answer lines into information lines and the final result code."""
    body = [line for line in lines[:-1] if line.strip()]
    return body, lines[-1].strip() if lines else ""


class _LineChannel(abc.ABC):
    """Shared framing: write ``cmd\\r``, read lines until a final result code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._buf = b""
        self._lock = asyncio.Lock()

    @abc.abstractmethod
    async def _write(self, data: bytes) -> None:
        """Send bytes to the modem."""

    @abc.abstractmethod
    async def _read_some(self) -> bytes:
        """Wait for and return the next bytes from the modem."""

    async def command(self, cmd: str, *, timeout_s: float) -> list[str]:
        async with self._lock:
            self._buf = b""
            await self._write(cmd.encode("ascii") + b"\r")
            lines: list[str] = []
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        while b"\n" not in self._buf and b"\r" not in self._buf:
                            chunk = await self._read_some()
                            if not chunk:
                                raise DeviceError(f"{self.name}: connection closed during {cmd!r}")
                            self._buf += chunk
                            if len(self._buf) > _MAX_ANSWER_BYTES:
                                raise DeviceError(f"{self.name}: answer to {cmd!r} too long")
                        line, _, rest = (
                            self._buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").partition(b"\n")
                        )
                        self._buf = rest
                        text = line.decode("ascii", "replace").strip()
                        if not text or text == cmd:
                            continue
                        lines.append(text)
                        if is_final(text):
                            return lines
            except TimeoutError as exc:
                raise DeviceError(f"{self.name}: no answer to {cmd!r} within {timeout_s}s") from exc


class TcpChannel(_LineChannel):
    """AT over a raw TCP socket (``tcp://host:port``)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"tcp://{host}:{port}")
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise DeviceError(f"{self.name}: cannot connect: {exc or type(exc).__name__}") from exc

    async def _write(self, data: bytes) -> None:
        assert self._writer is not None
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise DeviceError(f"{self.name}: write failed: {exc}") from exc

    async def _read_some(self) -> bytes:
        assert self._reader is not None
        try:
            return await self._reader.read(4096)
        except OSError as exc:
            raise DeviceError(f"{self.name}: read failed: {exc}") from exc

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None


_BAUD = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
    230400: termios.B230400,
    460800: termios.B460800,
    921600: termios.B921600,
}


class SerialChannel(_LineChannel):
    """AT over a serial device (``/dev/ttyUSB2``), raw mode, blocking I/O in a worker thread."""

    def __init__(self, path: str, baudrate: int) -> None:
        super().__init__(path)
        self.path = path
        self.baudrate = baudrate
        self._fd: int | None = None

    async def open(self, timeout_s: float) -> None:
        try:
            self._fd = await asyncio.to_thread(self._open)
        except (OSError, termios.error) as exc:
            raise DeviceError(f"{self.path}: cannot open serial device: {exc}") from exc

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            speed = _BAUD.get(self.baudrate, termios.B115200)
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error:
            os.close(fd)
            raise
        return fd

    async def _write(self, data: bytes) -> None:
        assert self._fd is not None
        fd = self._fd
        await asyncio.to_thread(os.write, fd, data)

    async def _read_some(self) -> bytes:
        assert self._fd is not None
        fd = self._fd

        def read() -> bytes:
            # Short select slices so a cancelled read returns its thread quickly.
            while True:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    return os.read(fd, 4096)

        return await asyncio.to_thread(read)

    async def aclose(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def open_channel(address: str, *, baudrate: int, timeout_s: float) -> TcpChannel | SerialChannel:
    """Open ``tcp://host:port`` or a serial device path.

    Raises:
        DeviceError: the modem cannot be reached.
    """
    if address.startswith("tcp://"):
        u = urlsplit(address)
        if not u.hostname or not u.port:
            raise DeviceError(f"{address}: expected tcp://host:port")
        ch: TcpChannel | SerialChannel = TcpChannel(u.hostname, u.port)
    else:
        ch = SerialChannel(address, baudrate)
    await ch.open(timeout_s)
    return ch
