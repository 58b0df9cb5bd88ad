"""The ``broadband`` collector: active probes of HTTP/1.1 targets (latency, jitter, loss,
throughput, DNS time, IPv4/IPv6 reachability), standard library only.

A target serves ``GET /ping`` (204), ``GET /download?bytes=N`` and ``POST /upload`` (204).
Latency is the time from opening a TCP connection to the ``/ping`` answer's status line; a
connection that fails, is reset or times out counts as lost. With ``ping = "icmp"`` (or
``"auto"``), ICMP echo is used instead where the system permits unprivileged ICMP sockets
(``net.ipv4.ping_group_range``); ``auto`` falls back to TCP otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import statistics
import struct
import time

import msgspec

from contract.readings import Broadband, Reading
from edge_agent.errors import DeviceError
from settings.edge import BroadbandCollector, ProbeTarget

_CHUNK = 65536


def build(cfg: BroadbandCollector) -> list[BroadbandProbe]:
    """One probe per collector table (it probes every target in turn)."""
    return [BroadbandProbe(cfg)]


def summarize_pings(rtts_ms: list[float | None]) -> tuple[float | None, float | None, float]:
    """Latency (median), jitter (mean absolute difference of consecutive answers) and loss %."""
    ok = [r for r in rtts_ms if r is not None]
    loss = 100.0 * (len(rtts_ms) - len(ok)) / len(rtts_ms) if rtts_ms else 100.0
    if not ok:
        return None, None, loss
    jitter = statistics.fmean(abs(a - b) for a, b in itertools.pairwise(ok)) if len(ok) > 1 else 0.0
    return round(statistics.median(ok), 3), round(jitter, 3), round(loss, 2)


def mbps(nbytes: int, seconds: float) -> float:
    """Throughput in megabits per second."""
    return round(nbytes * 8 / max(seconds, 1e-6) / 1e6, 3)


async def _request(
    host: str, port: int, method: str, path: str, *, body_bytes: int = 0, timeout_s: float
) -> tuple[int, int, float]:
    """One HTTP/1.1 request on a fresh connection: (status, body bytes read, seconds)."""
    t0 = time.perf_counter()
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            if method == "POST":
                head += f"Content-Type: application/octet-stream\r\nContent-Length: {body_bytes}\r\n"
            writer.write((head + "\r\n").encode())
            sent = 0
            block = b"\0" * _CHUNK
            while sent < body_bytes:
                n = min(_CHUNK, body_bytes - sent)
                writer.write(block[:n])
                await writer.drain()
                sent += n
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                raise ConnectionError("no HTTP status line")
            status = int(parts[1])
            length = -1
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            got = 0
            if method == "GET" and status == 200:
                while length < 0 or got < length:
                    chunk = await reader.read(_CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
            return status, got, time.perf_counter() - t0
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class BroadbandProbe:
    """Probes every target of one ``broadband`` table per round."""

    def __init__(self, cfg: BroadbandCollector) -> None:
        self.cfg = cfg
        self.device = cfg.device
        self.interval_s = cfg.interval_s

    async def _icmp_ping(self, host: str, seq: int) -> float | None:
        """One ICMP echo round trip in ms (None when lost); PermissionError when not permitted."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET)
        addr = infos[0][4][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) as sock:
            sock.setblocking(False)
            # Type 8 echo request; the kernel fills in the identifier and the checksum.
            packet = struct.pack(">BBHHH", 8, 0, 0, 0, seq & 0xFFFF) + b"parkwatch-probe"
            t0 = time.perf_counter()
            await loop.sock_sendto(sock, packet, (addr, 0))
            try:
                async with asyncio.timeout(self.cfg.timeout_s):
                    while True:
                        data = await loop.sock_recv(sock, 1024)
                        if (
                            len(data) >= 8
                            and data[0] == 0
                            and struct.unpack(">H", data[6:8])[0] == seq & 0xFFFF
                        ):
                            return (time.perf_counter() - t0) * 1000.0
            except TimeoutError:
                return None

    async def _pings(self, target: ProbeTarget) -> list[float | None]:
        if target.ping in ("icmp", "auto"):
            try:
                return [await self._icmp_ping(target.host, i) for i in range(target.pings)]
            except PermissionError:
                if target.ping == "icmp":
                    raise DeviceError(
                        f"{self.device}: ICMP is not permitted for this user; allow it with "
                        'sysctl net.ipv4.ping_group_range, or use ping = "tcp"'
                    ) from None
            except OSError:
                return [None] * target.pings
        return [await self._ping(target.host, target.port) for _ in range(target.pings)]

    async def _ping(self, host: str, port: int) -> float | None:
        try:
            status, _, secs = await _request(host, port, "GET", "/ping", timeout_s=self.cfg.timeout_s)
        except (OSError, TimeoutError, ConnectionError, ValueError):
            return None
        return secs * 1000.0 if 200 <= status < 300 else None

    async def probe(self, target: ProbeTarget) -> Broadband:
        """Measure one target."""
        timeout = self.cfg.timeout_s
        ts_ms = int(time.time() * 1000)
        fields: dict[str, object] = {"ts": ts_ms, "dev": self.device, "target": target.name}
        dns_ms: float | None = None
        if target.dns_name:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.get_running_loop().getaddrinfo(target.dns_name, target.port)
                dns_ms = round((time.perf_counter() - t0) * 1000.0, 3)
            except (OSError, TimeoutError):
                dns_ms = None
        rtts = await self._pings(target)
        latency, jitter, loss = summarize_pings(rtts)
        fields.update(
            latency_ms=latency, jitter_ms=jitter, loss_pct=loss, ipv4_ok=latency is not None, dns_ms=dns_ms
        )
        if target.ipv6_host:
            fields["ipv6_ok"] = await self._ping(target.ipv6_host, target.port) is not None
        if latency is not None and target.download_bytes:
            with contextlib.suppress(OSError, TimeoutError, ConnectionError, ValueError):
                status, got, secs = await _request(
                    target.host,
                    target.port,
                    "GET",
                    f"/download?bytes={target.download_bytes}",
                    timeout_s=timeout,
                )
                if status == 200 and got > 0:
                    fields["down_mbps"] = mbps(got, secs)
        if latency is not None and target.upload_bytes:
            with contextlib.suppress(OSError, TimeoutError, ConnectionError, ValueError):
                status, _, secs = await _request(
                    target.host,
                    target.port,
                    "POST",
                    "/upload",
                    body_bytes=target.upload_bytes,
                    timeout_s=timeout,
                )
                if 200 <= status < 300:
                    fields["up_mbps"] = mbps(target.upload_bytes, secs)
        try:
            return msgspec.convert({k: v for k, v in fields.items() if v is not None}, Broadband)
        except msgspec.ValidationError as exc:
            raise DeviceError(f"{self.device}: probe of {target.name} out of contract range: {exc}") from exc

    async def read(self) -> list[Reading]:
        return [await self.probe(t) for t in self.cfg.targets]

    async def aclose(self) -> None:
        return None
