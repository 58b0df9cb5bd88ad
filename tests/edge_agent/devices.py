"""Small devices that follow the agreed simulator interface (docs/firmware-sim.md), for tests.

Modbus TCP servers (pymodbus, holding registers, unit 1), an AT-over-TCP modem and an HTTP
probe target, each on a free loopback port inside the test's event loop; and a pseudo-terminal
pair (socat) standing in for an RS-485 line between the agent and a Modbus RTU device.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_registers(
    *,
    state: int,
    spindle_temp_c: float,
    motor_temp_c: float,
    vibration_mm_s: float,
    spindle_load_pct: float,
    parts_total: int,
    rejects_total: int,
) -> list[int]:
    regs = [0] * 14
    regs[0] = state
    regs[1] = round(spindle_temp_c * 10) & 0xFFFF
    regs[2] = round(motor_temp_c * 10) & 0xFFFF
    regs[3] = round(vibration_mm_s * 100)
    regs[4] = round(spindle_load_pct * 10)
    regs[10:12] = [parts_total >> 16, parts_total & 0xFFFF]
    regs[12:14] = [rejects_total >> 16, rejects_total & 0xFFFF]
    return regs


def energy_registers(
    *, power_kw: float, voltage_v: float, current_a: float, power_factor: float, energy_wh: int
) -> list[int]:
    regs: list[int] = []
    for v in (power_kw, voltage_v, current_a, power_factor):
        hi, lo = struct.unpack(">HH", struct.pack(">f", v))
        regs += [hi, lo]
    regs += list(struct.unpack(">HHHH", struct.pack(">Q", energy_wh)))
    return regs


class ModbusDevice:
    """One pymodbus TCP server with a holding-register block starting at address 0."""

    def __init__(self, registers: list[int], port: int | None = None) -> None:
        self.port = port or free_port()
        # pymodbus' device context maps protocol address a to block index a + 1.
        self.block = ModbusSequentialDataBlock(1, list(registers) + [0] * 16)  # type: ignore[no-untyped-call]
        ctx = ModbusServerContext(devices={1: ModbusDeviceContext(hr=self.block)}, single=False)
        self.server = ModbusTcpServer(ctx, address=("127.0.0.1", self.port))
        self._task: asyncio.Task[None] | None = None

    async def set(self, address: int, values: list[int]) -> None:
        """Write holding registers (protocol addresses), as a PLC updating its values would."""
        await self.server.async_setValues(1, 16, address, values)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve_forever())
        for _ in range(100):
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


@dataclass
class ModemState:
    operator: str = "Viettel"
    act: int = 7
    qeng: str = (
        '+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2B3C4,123,1850,3,5,5,2F1A,-95,-11,-65,13,9,20,40'
    )
    cesq: str = "+CESQ: 99,99,255,255,18,46"
    gnss: str | None = "+QGPSLOC: 031500.000,20.8449,106.6881,1.2,12.0,3,0.0,0.0,0.0,231126,09"
    commands: list[str] = field(default_factory=list)


class ATModem:
    """An AT-over-TCP modem answering the agreed command set from a :class:`ModemState`."""

    def __init__(self, state: ModemState | None = None, port: int | None = None) -> None:
        self.state = state or ModemState()
        self.port = port or free_port()
        self._server: asyncio.Server | None = None

    def answer(self, cmd: str) -> list[str]:
        s = self.state
        s.commands.append(cmd)
        if cmd in ("AT", "ATE0", "ATE1"):
            return ["OK"]
        if cmd == "ATI":
            return ["Quectel", "RM500Q-GL", "Revision: TEST", "OK"]
        if cmd == "AT+COPS?":
            return [f'+COPS: 0,0,"{s.operator}",{s.act}', "OK"]
        if cmd == 'AT+QENG="servingcell"':
            return [s.qeng, "OK"]
        if cmd == "AT+CESQ":
            return [s.cesq, "OK"]
        if cmd == "AT+QGPSLOC=2":
            return [s.gnss, "OK"] if s.gnss else ["+CME ERROR: 516"]
        return ["ERROR"]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        echo = True
        buf = b""
        try:
            while data := await reader.read(1024):
                buf += data
                while b"\r" in buf:
                    raw, _, buf = buf.partition(b"\r")
                    cmd = raw.decode().strip()
                    if not cmd:
                        continue
                    out = b""
                    if echo:
                        out += raw.strip() + b"\r"
                    if cmd == "ATE0":
                        echo = False
                    elif cmd == "ATE1":
                        echo = True
                    for line in self.answer(cmd):
                        out += b"\r\n" + line.encode() + b"\r\n"
                    writer.write(out)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class ProbeTarget:
    """The agreed broadband probe target: GET /ping, GET /download?bytes=N, POST /upload."""

    def __init__(self, *, drop: Callable[[], bool] = lambda: False, port: int | None = None) -> None:
        self.port = port or free_port()
        self.drop = drop
        self._servers: list[asyncio.Server] = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if self.drop():
                return
            method, target = request.split()[:2]
            if target.startswith(b"/download"):
                n = int(target.split(b"bytes=")[1])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
                writer.write(b"x" * n)
            else:
                if method == b"POST":
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._servers.append(await asyncio.start_server(self._client, "127.0.0.1", self.port))
        with contextlib.suppress(OSError):
            self._servers.append(await asyncio.start_server(self._client, "::1", self.port))

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
            await s.wait_closed()


@dataclass(frozen=True, slots=True)
class PtyPair:
    """Two linked pseudo-terminals: bytes written to one end come out of the other, like a cable."""

    agent_end: str
    device_end: str


@contextlib.asynccontextmanager
async def pty_pair(directory: Path) -> AsyncIterator[PtyPair]:
    """Run ``socat`` with two raw ptys linked as ``directory/ttyAgent`` and ``directory/ttyDevice``.

    Ready when socat reports its transfer loop (both links are made before it), read from its
    log, never after a guessed delay.
    """
    from tests.conftest import _unavailable

    if shutil.which("socat") is None:
        _unavailable("socat is not installed (Debian package socat)")
    pair = PtyPair(agent_end=str(directory / "ttyAgent"), device_end=str(directory / "ttyDevice"))
    proc = await asyncio.create_subprocess_exec(
        "socat",
        "-d",
        "-d",
        f"pty,raw,echo=0,link={pair.agent_end}",
        f"pty,raw,echo=0,link={pair.device_end}",
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(10):
            while b"starting data transfer loop" not in (line := await proc.stderr.readline()):
                assert line, f"socat exited ({await proc.wait()}) before making the pty pair"
        assert await asyncio.to_thread(lambda: all(map(os.path.exists, (pair.agent_end, pair.device_end))))
        yield pair
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
