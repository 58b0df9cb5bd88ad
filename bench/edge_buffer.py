"""The disk buffer's own CPU at the edge bench's load, without devices, MQTT or event loop.

Run from the repository root (``PYTHONPATH`` decides whose ``edge_agent.buffer`` is measured, so
the same script measures another checkout too)::

    python -m bench.edge_buffer                 # 200 readings/s, 200 simulated seconds, 3 runs

Each simulated second does what the agent does at 200 readings/s: 5 writes of 40 encoded machine
readings, one seal, begin and mark published for every new batch, a confirm of the older ones, a
retention check, and a WAL checkpoint every 10 s. CPU is the process's CPU time for the whole run
(readings encoded beforehand, outside it) per simulated second. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from contract.readings import Machine
from edge_agent.buffer import DiskBuffer

TS0 = 1_795_000_000_000


def readings(n: int) -> list[bytes]:
    """Encoded machine readings of the bench's size (about 250 bytes)."""
    enc = msgspec.json.Encoder()
    return [
        enc.encode(
            Machine(
                ts=TS0 + i,
                dev=f"cnc-{i % 20:03d}",
                tags={"line": "bench", "site": "hp-deep-c-factory-07"},
                state="running",
                spindle_temp_c=61.3,
                motor_temp_c=40.0,
                vibration_mm_s=2.31,
                spindle_load_pct=55.5,
                parts_total=i,
                rejects_total=i // 100,
            )
        )
        for i in range(n)
    ]


def run(seconds: int, rate: int) -> float:
    """CPU ms per simulated second."""
    per_write = rate // 5
    bodies = readings(seconds * rate)
    with tempfile.TemporaryDirectory() as d:
        buf = DiskBuffer(
            Path(d) / "b.sqlite",
            gateway="gw-1",
            max_readings=5_000_000,
            max_bytes=10**9,
            autocheckpoint=False,
        )
        held: list[int] = []
        cpu0 = time.process_time()
        for s in range(seconds):
            for w in range(5):
                first = (s * 5 + w) * per_write
                buf.put(bodies[first : first + per_write])
            buf.seal(max_readings=500, now_ms=TS0 + 1000 * s)
            while (tx := buf.begin()) is not None:
                buf.mark_published(tx, now_ms=TS0 + 1000 * s)
                held.append(tx.seq)
            if len(held) > 3:
                buf.confirm([(held[0], held[-3])])
                held = held[-2:]
            buf.expire(published_before_ms=TS0 - 1)
            if s % 10 == 9:
                buf.checkpoint()
        cpu = time.process_time() - cpu0
        buf.close()
    return 1000.0 * cpu / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=200, help="readings per second (default: %(default)s)")
    ap.add_argument("--seconds", type=int, default=200, help="simulated seconds (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs, median reported (default: %(default)s)")
    args = ap.parse_args()
    ms = [run(args.seconds, args.rate) for _ in range(args.repeat)]
    print(
        f"disk buffer at {args.rate} readings/s: "
        f"{statistics.median(ms):.2f} ms CPU per second = {statistics.median(ms) / 10:.3f} % of one core "
        f"(median of {args.repeat}; {', '.join(f'{m:.2f}' for m in ms)})"
    )


if __name__ == "__main__":
    main()
