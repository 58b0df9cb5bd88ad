"""The ``system`` collector: the gateway's CPU, memory, disk, uptime and clock synchronisation.

Read from ``/proc`` (Linux, no extra dependency). Clock sync comes from
``timedatectl`` (systemd-timesyncd, chrony and ntpd all feed it) when available. The clock
offset comes from the time daemon itself: ``chronyc tracking`` when chrony runs, else
``timedatectl timesync-status`` (systemd-timesyncd); it is reported as the gateway's clock minus
the reference time (positive: the gateway's clock is ahead), in milliseconds.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

from contract.readings import Reading, System
from settings.edge import SystemCollector


def build(cfg: SystemCollector) -> list[SystemMonitor]:
    """One monitor."""
    return [SystemMonitor(cfg)]


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(busy, total) jiffies from the ``cpu`` line of ``/proc/stat``."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            total = sum(vals[:8])
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def parse_meminfo(text: str) -> float | None:
    """Used memory percent from ``/proc/meminfo`` (MemTotal and MemAvailable)."""
    info: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if rest.strip():
            info[name] = int(rest.split()[0])
    total, avail = info.get("MemTotal"), info.get("MemAvailable")
    if not total or avail is None:
        return None
    return round(100.0 * (total - avail) / total, 2)


_CHRONY_SYSTEM_TIME = re.compile(
    r"^System time\s*:\s*([0-9.]+) seconds (fast|slow) of NTP time", re.MULTILINE
)
_TIMESYNC_OFFSET = re.compile(r"^\s*Offset:\s*([+-]?[0-9.]+)\s*(ns|us|µs|ms|s|min)\s*$", re.MULTILINE)
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "min": 60000.0}


def parse_chrony_tracking(text: str) -> float | None:
    """Clock offset in ms from ``chronyc tracking`` ("System time: X seconds fast of NTP time")."""
    m = _CHRONY_SYSTEM_TIME.search(text)
    if m is None:
        return None
    ms = float(m.group(1)) * 1000.0
    return round(ms if m.group(2) == "fast" else -ms, 3)


def parse_timesync_status(text: str) -> float | None:
    """Clock offset in ms from ``timedatectl timesync-status``.

    Its ``Offset`` is the NTP offset (the server's time minus the local time), so the gateway's
    clock is ahead by minus that.
    """
    m = _TIMESYNC_OFFSET.search(text)
    if m is None:
        return None
    return round(-float(m.group(1)) * _UNIT_MS[m.group(2)], 3) + 0.0


async def _run(*argv: str, timeout_s: float = 3.0) -> str | None:
    """Output of a short command, None when it is missing, fails or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(timeout_s):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None
    except OSError:
        return None
    return out.decode(errors="replace") if proc.returncode == 0 else None


class SystemMonitor:
    """Samples the gateway itself."""

    def __init__(self, cfg: SystemCollector) -> None:
        self.cfg = cfg
        self.device = cfg.device
        self.interval_s = cfg.interval_s
        self._prev_cpu: tuple[int, int] | None = None

    def _cpu_pct(self) -> float | None:
        try:
            busy, total = parse_proc_stat(Path("/proc/stat").read_text())
        except (OSError, ValueError):
            return None
        prev, self._prev_cpu = self._prev_cpu, (busy, total)
        if prev is None or total <= prev[1]:
            return None
        return round(100.0 * (busy - prev[0]) / (total - prev[1]), 2)

    async def _clock_synced(self) -> bool | None:
        out = await _run("timedatectl", "show", "-p", "NTPSynchronized", "--value")
        return None if out is None else {"yes": True, "no": False}.get(out.strip())

    async def _clock_offset_ms(self) -> float | None:
        chrony = await _run("chronyc", "-n", "tracking")
        if chrony is not None:
            return parse_chrony_tracking(chrony)
        timesyncd = await _run("timedatectl", "timesync-status")
        return None if timesyncd is None else parse_timesync_status(timesyncd)

    def _sample(self) -> dict[str, float | bool | None]:
        # /proc reads never block on disk; they stay on the event loop.
        fields: dict[str, float | bool | None] = {"cpu_pct": self._cpu_pct()}
        try:
            fields["mem_pct"] = parse_meminfo(Path("/proc/meminfo").read_text())
        except (OSError, ValueError):
            fields["mem_pct"] = None
        try:
            du = shutil.disk_usage(self.cfg.disk_path)
            fields["disk_pct"] = round(100.0 * du.used / du.total, 2) if du.total else None
        except OSError:
            fields["disk_pct"] = None
        try:
            fields["uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            fields["uptime_s"] = None
        return fields

    async def read(self) -> list[Reading]:
        fields = self._sample()
        fields["clock_synced"] = await self._clock_synced()
        fields["clock_offset_ms"] = await self._clock_offset_ms()
        return [
            System(
                ts=int(time.time() * 1000),
                dev=self.device,
                **{k: v for k, v in fields.items() if v is not None},  # type: ignore[arg-type]
            )
        ]

    async def aclose(self) -> None:
        return None
