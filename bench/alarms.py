"""Benchmark of one alarm evaluation on a demo store: the time of each rule, and of a whole pass.

Usage: ``python -m bench.alarms DUCKDB_FILE [--at EPOCH_MS]``, on the store of a
``parkwatch demo --data-dir DIR`` run (``DIR/parkwatch.duckdb``, read while no demo holds it).
Builds the demo's alarm settings, evaluates each rule once at ``--at`` (default: the newest
reading), then two whole evaluations into a fresh alarm store: the first raises the alarms (the
inserts, journal and outbox rows), the second only re-reads and confirms them. Prints
milliseconds; the ratio first/second says what the writes cost beside the reads.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from api.alarms.engine import AlarmEngine
from api.services import Services
from firmware_sim.scenario import load_scenario
from parkwatch.demo import serve_settings
from storage.alarm_store import AlarmStore
from storage.query_duckdb import DuckDBQuery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="DuckDB file of a demo run")
    parser.add_argument(
        "--at", type=int, default=0, help="evaluate at this epoch ms (default: newest reading)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pw-bench-alarms-"))
    settings = serve_settings(
        root, load_scenario(), {}, mqtt_port=1, host="127.0.0.1", port=1, key_sha256="0" * 64, speed=10.0
    ).api_settings()
    at = args.at
    if not at:
        with duckdb.connect(args.store, read_only=True) as con:
            row = con.execute("SELECT epoch_ms(max(ts)) FROM machine").fetchone()
        at = int(row[0]) if row and row[0] is not None else int(time.time() * 1000)
    backend = DuckDBQuery(path=args.store)
    services = Services.build(settings, backend)
    engine = AlarmEngine(settings.alarms, AlarmStore(root / "registry.sqlite"), services.alarms)
    engine.seed(at)
    rules, _ = engine.rules()
    for rule in rules:
        t0 = time.perf_counter()
        found = services.alarms.evaluate(rule, at, set(), {})
        print(
            f"{rule.id:18s} {rule.type:18s} {1000 * (time.perf_counter() - t0):8.1f} ms  {len(found):4d} sources"
        )
    t0 = time.perf_counter()
    first = engine.evaluate(at)
    t1 = time.perf_counter()
    engine.evaluate(at + 10_000)
    t2 = time.perf_counter()
    print(f"first evaluation  {1000 * (t1 - t0):8.1f} ms  ({first.raised} alarms raised)")
    print(f"second evaluation {1000 * (t2 - t1):8.1f} ms  (ratio {(t1 - t0) / (t2 - t1):.2f})")
    backend.close()


if __name__ == "__main__":
    main()
