"""Micro-benchmark of the ingester's per-reading path: decode, cells, line protocol, gzip.

Run from the repository root as a module (``bench/ingest.py`` shadows the ``ingest`` package)::

    PYTHONPATH=$PWD python3 -m bench.ingest_encode                       # this checkout
    PYTHONPATH=$PWD python3 -m bench.ingest_encode --against ../other    # and another, alternating

It times, in CPU seconds of one process (``time.process_time``), what the ingester does per
reading outside of MQTT and HTTP, on the contract batches of ``bench/ingest.py`` (mixed kinds,
fresh series in every run, as a live stream has):

- ``decode``: :func:`contract.codec.decode_batch` of every payload;
- ``cells``: the H3 cells and the write-batch parts;
- ``encode``: :func:`ingest.points.encode_batch` of write batches of 10,000 readings (the
  ingester's default ``batch_readings``) with one long-lived encoder, as in the ingester;
- ``gzip``: level-1 compression of the joined body by ISA-L, as the ingester does with the
  default ``[sink] gzip = true``.

With ``--against`` the same payloads (written once to a temporary file) are measured by a
subprocess per checkout, the checkouts taking turns, so that both see the same machine load.
Figures are medians of ``--repeat`` runs (each on data of its own seed) in microseconds per
reading, printed with the 1-minute load average; compare checkouts only within one run. The
workers set the cycle collector as ``parkwatch ingest`` does (``gc.freeze()``, threshold 100,000).
Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAGES = ("decode", "cells", "encode", "gzip")


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def make_data(path: Path, *, readings: int, repeat: int, shapes: list[int], encodings: list[str]) -> None:
    """Payloads of every run: ``{"<encoding>/<shape>/<run>": [[topic, payload hex], ...]}``."""
    import msgspec

    from bench.ingest import SENT_PLACEHOLDER, generate

    data: dict[str, list[tuple[str, bytes]]] = {}
    for encoding in encodings:
        for shape in shapes:
            for run in range(repeat):
                batches = generate(readings, sizes=(shape, shape), seed=100 + run, encoding=encoding)
                stamp = (
                    (f'"sent":{SENT_PLACEHOLDER}'.encode(), b'"sent":0')
                    if encoding == "json"
                    else (SENT_PLACEHOLDER.to_bytes(8, "big"), (0).to_bytes(8, "big"))
                )
                data[f"{encoding}/{shape}/{run}"] = [(t, p.replace(*stamp)) for t, p in batches]
    path.write_bytes(msgspec.msgpack.encode(data))


def measure(data_path: Path, key: str, root: str) -> dict[str, float]:
    """CPU microseconds per reading of each stage for the payloads under ``key``."""
    import msgspec
    from isal import igzip

    from contract import decode_batch, parse_topic
    from ingest.enrich import CellLocator
    from ingest.model import Part, WriteBatch
    from ingest.points import encode_batch

    batches: list[tuple[str, bytes]] = msgspec.msgpack.decode(data_path.read_bytes())[key]
    now_ms = int(time.time() * 1000)
    t0 = time.process_time()
    decoded = [(topic, decode_batch(payload, now_ms=now_ms)) for topic, payload in batches]
    t1 = time.process_time()
    cells = CellLocator(10)
    parts = []
    for topic, d in decoded:
        t = parse_topic(topic, root="bench/parkwatch")
        parts.append(
            Part(park=t.park, gw=t.gateway, readings=d.readings, h3=cells.cells(t.gateway, d.readings))
        )
    t2 = time.process_time()
    writes: list[list[Any]] = [[]]
    count = 0
    for p in parts:
        if count >= 10_000:
            writes.append([])
            count = 0
        writes[-1].append(p)
        count += len(p.readings)
    bodies = []
    for w in writes:
        enc = encode_batch(WriteBatch(parts=w), src="bench", now_ns=0)
        bodies.append("\n".join(enc.lines).encode())
    t3 = time.process_time()
    for body in bodies:
        igzip.compress(body, compresslevel=1)
    t4 = time.process_time()
    n = sum(len(p.readings) for p in parts)
    per = [(b - a) / n * 1e6 for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4))]
    return dict(zip(STAGES, per, strict=True))


def _worker(args: argparse.Namespace) -> None:
    import gc

    sys.path.insert(0, args.root)
    # The ingester's cycle-collector settings (ingest/cli.py), so that collections cost here
    # what they cost there (with Python's default threshold they would cost several times more).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    print(json.dumps(measure(Path(args.data), args.key, args.root)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="", help="another checkout to measure in turn with this one")
    parser.add_argument("--readings", type=int, default=50_000, help="readings per run (default 50,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure, median reported (default 5)")
    parser.add_argument("--shapes", default="10,500", help="readings per message (default: 10,500)")
    parser.add_argument("--encodings", default="json,msgpack", help="default: json,msgpack")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    here = str(Path(__file__).resolve().parents[1])
    checkouts = [("this", here)] + ([("against", str(Path(args.against).resolve()))] if args.against else [])
    shapes = [int(s) for s in args.shapes.split(",") if s]
    encodings = [e for e in args.encodings.split(",") if e]
    print(
        f"ingester per-reading CPU (us/reading, median of {args.repeat} runs of {args.readings:,} readings):"
        f" {os.cpu_count()} cores, load {_load()}"
    )
    for name, root in checkouts:
        print(f"  {name}: {root}")
    with tempfile.TemporaryDirectory(prefix="pw-encode-") as tmp:
        data = Path(tmp) / "payloads.msgpack"
        make_data(data, readings=args.readings, repeat=args.repeat, shapes=shapes, encodings=encodings)
        for encoding in encodings:
            for shape in shapes:
                results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in checkouts}
                before = _load()
                for run in range(args.repeat):
                    for name, root in checkouts:
                        out = subprocess.run(
                            [sys.executable, __file__, "--worker", "--data", str(data),
                             "--key", f"{encoding}/{shape}/{run}", "--root", root],
                            env={**os.environ, "PYTHONPATH": root},
                            cwd=root,
                            capture_output=True,
                            text=True,
                            check=True,
                        )  # fmt: skip
                        results[name].append(json.loads(out.stdout))
                print(f"\n-- {encoding}, {shape} readings per message   load {before} -> {_load()}")
                totals = {}
                for name, runs in results.items():
                    medians = {s: statistics.median(r[s] for r in runs) for s in STAGES}
                    nogzip = [sum(r[s] for s in STAGES if s != "gzip") for r in runs]
                    totals[name] = statistics.median(nogzip)
                    stages = "  ".join(f"{s} {medians[s]:5.2f}" for s in STAGES)
                    print(
                        f"  {name:<8} {stages}   decode+cells+encode {totals[name]:5.2f}"
                        f" ({min(nogzip):.2f}-{max(nogzip):.2f})"
                    )
                if len(totals) == 2:
                    print(f"  this / against (decode+cells+encode): {totals['this'] / totals['against']:.2f}")


if __name__ == "__main__":
    main()
