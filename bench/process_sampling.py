"""CPU and RSS of a process over a window, as the edge benches measure the agent (one helper for all).

CPU is the process's CPU time (user + system) at the end of the window minus at its start,
divided by the window's wall time: never a median of per-second samples, which the 10 ms clock
tick quantises (a 1 s sample of a process using 2 % of a core is 0, 1, 2 or 3 ticks). RSS is
sampled once a second: the median and the peak of the window. Every phase is run several times;
:class:`Phases` keeps the samples with the 1-minute load average before and after each run and
prints medians with their spread.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable
from typing import NamedTuple

import psutil


class Sample(NamedTuple):
    """One run of one phase."""

    cpu_pct: float
    """CPU time over the whole window / its wall time, in % of one core."""
    rss_mb: float
    """Median of the per-second RSS samples."""
    peak_mb: float
    """Largest per-second RSS sample."""


async def sample(pid: int, seconds: float, *, warmup_s: float) -> Sample:
    """Wait ``warmup_s``, then measure process ``pid`` for ``seconds`` (whole seconds)."""
    p = psutil.Process(pid)
    await asyncio.sleep(warmup_s)
    rss: list[float] = []
    t_start, cpu_start = time.monotonic(), sum(p.cpu_times()[:2])
    for _ in range(max(1, int(seconds))):
        await asyncio.sleep(1.0)
        rss.append(p.memory_info().rss / 2**20)
    cpu_pct = 100.0 * (sum(p.cpu_times()[:2]) - cpu_start) / (time.monotonic() - t_start)
    return Sample(cpu_pct, statistics.median(rss), max(rss))


async def run_sampled(
    argv: list[str],
    seconds: float,
    *,
    warmup_s: float = 3.0,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Sample:
    """Start ``argv``, measure it with :func:`sample`, then stop it (SIGTERM, SIGKILL after 20 s)."""
    proc = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.DEVNULL, cwd=cwd, env=env)
    try:
        return await sample(proc.pid, seconds, warmup_s=warmup_s)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def load() -> str:
    """The 1-minute load average."""
    return f"{os.getloadavg()[0]:.2f}"


class Phases:
    """Samples per phase name, each with the load average before and after its run."""

    def __init__(self) -> None:
        self.samples: dict[str, list[Sample]] = {}
        self.loads: dict[str, list[str]] = {}

    async def measure(self, name: str, run: Awaitable[Sample]) -> Sample:
        """Run one sampled phase and keep its figures."""
        before = load()
        s = await run
        self.samples.setdefault(name, []).append(s)
        self.loads.setdefault(name, []).append(f"{before}->{load()}")
        return s

    def median(self, name: str, field: str = "cpu_pct") -> float:
        """The median of one figure of a phase over its runs."""
        return statistics.median(getattr(s, field) for s in self.samples[name])

    def table(self, width: int = 38) -> list[str]:
        """One line per phase: CPU median (min-max), RSS median, peak, load before->after per run."""
        lines = [
            f"{'phase':<{width}}{'CPU % (median, min-max)':>26}{'RSS MB':>8}{'peak':>7}   load before->after"
        ]
        for name, runs in self.samples.items():
            cpus = [s.cpu_pct for s in runs]
            lines.append(
                f"{name:<{width}}{self.median(name):>12.2f} ({min(cpus):.2f}-{max(cpus):.2f})  "
                f"{self.median(name, 'rss_mb'):>8.1f}{max(s.peak_mb for s in runs):>7.1f}   "
                f"{' '.join(self.loads[name])}"
            )
        return lines
