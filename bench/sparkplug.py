"""Sparkplug B intake cost: ``Ingester.handle`` on NDATA/DDATA messages, no broker, no store.

Run from the repository root::

    python -m bench.sparkplug                 # 20 000 DDATA messages of 20 metrics each
    python -m bench.sparkplug --metrics 200 --messages 5000

Each message carries ``--metrics`` aliased metrics of one device: a quarter mapped to machine
fields (scaled), the rest unmapped (stored as generic values). The figure is messages and
metric values per second of CPU through protobuf decoding, alias resolution, the seq/ledger
step, mapping and the contract decoder, on one core; it prints the load average beside it.
Nothing passes or fails: read the numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ingest.model import WriteBatch
from ingest.service import Ingester
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload
from settings.ingest import IngestSettings
from settings.loader import settings_from_dict
from tests.fakes import FakeSink
from tests.ingest.sparkplug_helpers import message


def _settings(tmp: Path, mapped: list[str]) -> IngestSettings:
    rules = [{"name": n, "kind": "machine", "field": "spindle_temp_c", "scale": 0.1} for n in mapped[:1]]
    rules += [{"name": n, "kind": "machine", "field": "parts_total"} for n in mapped[1:2]]
    node = {"group": "g", "edge_node": "n", "park": "hp-a", "gateway": "sp-bench", "metrics": rules}
    return settings_from_dict(
        IngestSettings,
        {
            "sink": {"type": "duckdb", "path": str(tmp / "x.duckdb")},
            "ingest": {"spool_dir": str(tmp / "spool"), "metrics_enabled": False},
            "sparkplug": {"enabled": True, "nodes": [node]},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    names = [f"Line/Metric {i}" for i in range(args.metrics)]
    with tempfile.TemporaryDirectory() as tmp:
        ing = Ingester(_settings(Path(tmp), names), sink=FakeSink())
        assert ing.sparkplug is not None
        ing.sparkplug.bind(lambda *_a, **_k: True, lambda *_a: None)
        now = int(time.time() * 1000)
        birth = Payload(timestamp=now, seq=0)
        birth.metrics.add(name="bdSeq", datatype=DataType.UInt64, long_value=0)
        ing.handle(message("spBv1.0/g/NBIRTH/n", birth.SerializeToString()), WriteBatch())
        dbirth = Payload(timestamp=now, seq=1)
        for i, name in enumerate(names):
            dbirth.metrics.add(name=name, alias=i + 1, datatype=DataType.Int32, int_value=i)
        ing.handle(message("spBv1.0/g/DBIRTH/n/cnc-1", dbirth.SerializeToString()), WriteBatch())
        bodies = []
        for k in range(args.messages):
            p = Payload(timestamp=now + k, seq=(k + 2) % 256)
            for i in range(args.metrics):
                p.metrics.add(alias=i + 1, timestamp=now + k, int_value=(k + i) % 1000)
            bodies.append(message("spBv1.0/g/DDATA/n/cnc-1", p.SerializeToString()))
        out = WriteBatch()
        t0 = time.process_time()
        stored = sum(ing.handle(m, out) for m in bodies)
        cpu_s = time.process_time() - t0
    assert not out.dead_letters, out.dead_letters[:3]
    values = args.messages * args.metrics
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    print(f"{args.messages} DDATA x {args.metrics} metrics: {cpu_s:.2f} s CPU, {stored} readings")
    print(f"{args.messages / cpu_s:,.0f} messages/s, {values / cpu_s:,.0f} metric values/s per core")


if __name__ == "__main__":
    main()
