"""The ``system`` collector: the gateway's CPU, memory, disk, uptime and clock synchronisation.

Read from ``/proc`` (Linux, no extra dependency). Clock sync comes from
``timedatectl`` (systemd-timesyncd, chrony and ntpd all feed it) when available.
"""

from __future__ import annotations

import asyncio
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
        if shutil.which("timedatectl") is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                "timedatectl",
                "show",
                "-p",
                "NTPSynchronized",
                "--value",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            async with asyncio.timeout(3):
                out, _ = await proc.communicate()
        except (OSError, TimeoutError):
            return None
        value = out.decode().strip()
        return {"yes": True, "no": False}.get(value)

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
        return [
            System(
                ts=int(time.time() * 1000),
                dev=self.device,
                **{k: v for k, v in fields.items() if v is not None},  # type: ignore[arg-type]
            )
        ]

    async def aclose(self) -> None:
        return None
