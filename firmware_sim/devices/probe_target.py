"""A broadband probe target: a small HTTP/1.1 server on 127.0.0.1 and ::1 with shaped behaviour.

Endpoints: ``GET /ping`` (204), ``GET /download?bytes=N`` (N bytes, at most
:data:`MAX_DOWNLOAD_BYTES`), ``POST /upload`` (body read and discarded, 204). Shaping happens in
the application, no root needed: every response waits one latency draw
(``max(0, gauss(latency_ms, jitter_ms))``), a share ``loss_pct`` of new connections is reset
without an answer, and bodies are paced to ``down_mbps`` / ``up_mbps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from typing import Final
from urllib.parse import parse_qs, urlsplit

from firmware_sim.errors import DeviceStartError
from firmware_sim.scenario import ProbeProfile

MAX_DOWNLOAD_BYTES: Final = 50_000_000
MAX_HEADER_BYTES: Final = 16 * 1024
CHUNK_BYTES: Final = 64 * 1024
_REASONS: Final[dict[int, str]] = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
}
_log = logging.getLogger(__name__)


class _Pacer:
    """Sleeps so that the bytes moved so far never exceed ``rate_mbps``."""

    def __init__(self, rate_mbps: float) -> None:
        self.bytes_per_s = rate_mbps * 1e6 / 8.0
        self.start = time.monotonic()
        self.sent = 0

    async def account(self, n: int) -> None:
        self.sent += n
        ahead = self.sent / self.bytes_per_s - (time.monotonic() - self.start)
        if ahead > 0:
            await asyncio.sleep(ahead)


class ProbeTarget:
    """One target with one profile, listening on the same port on every host in ``hosts``."""

    def __init__(
        self,
        profile: ProbeProfile,
        *,
        seed: str,
        hosts: tuple[str, ...] = ("127.0.0.1", "::1"),
    ) -> None:
        self.profile = profile
        self.hosts = hosts
        self.port = 0
        self.rng = random.Random(f"{seed}:probe:{profile.name}")
        self._block = self.rng.randbytes(CHUNK_BYTES)
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        """Listen on every host; with ``port=0`` find one port free on all of them.

        Raises:
            DeviceStartError: no common free port (or a host, e.g. ``::1``, is unavailable).
        """
        last: OSError | None = None
        for _ in range(20):
            servers: list[asyncio.Server] = []
            try:
                chosen = port
                for host in self.hosts:
                    srv = await asyncio.start_server(self._handle, host, chosen)
                    servers.append(srv)
                    chosen = int(srv.sockets[0].getsockname()[1])
                self._servers = servers
                self.port = chosen
                return chosen
            except OSError as exc:
                last = exc
                for srv in servers:
                    srv.close()
                    await srv.wait_closed()
                if port:
                    break
        raise DeviceStartError(
            f"probe target {self.profile.name}: cannot listen on {', '.join(self.hosts)} port {port}: {last}"
            + (" (no IPv6 loopback here? run with --no-ipv6)" if len(self.hosts) > 1 else "")
        )

    def _latency_s(self) -> float:
        p = self.profile
        return max(0.0, self.rng.gauss(p.latency_ms, p.jitter_ms)) / 1000.0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.rng.random() * 100.0 < self.profile.loss_pct:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends a RST, as a lossy path resets or times out the connection.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        self._conns.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Shutdown: end the handler quietly (asyncio's stream callback reports a cancelled
            # handler task as an error on Python 3.11).
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, *, length: int = 0, close: bool = False
    ) -> None:
        head = f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: parkwatch-sim\r\n"
        if status != 204:
            head += f"Content-Length: {length}\r\nContent-Type: application/octet-stream\r\n"
        if close:
            head += "Connection: close\r\n"
        writer.write((head + "\r\n").encode("ascii"))
        await writer.drain()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        if len(raw) > MAX_HEADER_BYTES:
            await self._respond(writer, 400, close=True)
            return False
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._respond(writer, 400, close=True)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        url = urlsplit(target)
        await asyncio.sleep(self._latency_s())
        if url.path == "/ping":
            if method not in ("GET", "HEAD"):
                await self._respond(writer, 405, close=close)
            else:
                await self._respond(writer, 204, close=close)
        elif url.path == "/download":
            if method != "GET":
                await self._respond(writer, 405, close=close)
                return not close
            try:
                n = int(parse_qs(url.query).get("bytes", ["1000000"])[0])
            except ValueError:
                await self._respond(writer, 400, close=True)
                return False
            n = max(0, min(n, MAX_DOWNLOAD_BYTES))
            await self._respond(writer, 200, length=n, close=close)
            pacer = _Pacer(self.profile.down_mbps)
            left = n
            while left > 0:
                chunk = self._block[: min(left, CHUNK_BYTES)]
                writer.write(chunk)
                await writer.drain()
                left -= len(chunk)
                await pacer.account(len(chunk))
        elif url.path == "/upload":
            if method != "POST":
                await self._respond(writer, 405, close=close)
                return not close
            if "content-length" not in headers:
                await self._respond(writer, 411, close=True)
                return False
            try:
                left = int(headers["content-length"])
            except ValueError:
                await self._respond(writer, 400, close=True)
                return False
            if left > MAX_DOWNLOAD_BYTES:
                await self._respond(writer, 413, close=True)
                return False
            pacer = _Pacer(self.profile.up_mbps)
            while left > 0:
                data = await reader.read(min(left, CHUNK_BYTES))
                if not data:
                    return False
                left -= len(data)
                await pacer.account(len(data))
            await self._respond(writer, 204, close=close)
        else:
            await self._respond(writer, 404, close=close)
        return not close

    async def aclose(self) -> None:
        """Stop listening and close open connections."""
        for srv in self._servers:
            srv.close()
        for w in list(self._conns):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for srv in self._servers:
            await srv.wait_closed()
        self._servers = []
