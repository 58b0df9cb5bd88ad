"""How fast ``parkwatch sim fleet`` can publish, against a plain paho-mqtt baseline.

Starts a private Mosquitto 2 (the test servers' helper) unless ``--broker`` is given, then, per
round:

* **generate**: building and encoding batches from the models only (no network), batches/s;
* **baseline**: one plain paho-mqtt client publishing the same encoded batches at QoS 1 as fast
  as it can and waiting for every PUBACK (the broker path without the fleet), batches/s;
* **fleet**: :class:`firmware_sim.fleet.Fleet` with ``--gateways`` connections through the edge
  agent's publisher, asked for an unreachable rate, for ``--duration`` seconds, batches/s.

Prints medians over ``--rounds`` and the fleet/baseline ratio. The machine is shared and noisy:
compare ratios, not absolute figures between runs. Not a pass/fail test.

    python bench/fleet.py --gateways 100 --duration 5 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from contract.codec import encode  # noqa: E402
from firmware_sim.fleet import BatchFactory, Fleet, FleetOptions, fleet_scenario  # noqa: E402
from firmware_sim.scenario import Scenario, load_scenario  # noqa: E402
from tests.servers import mosquitto_server  # noqa: E402


def generate(scenario: Scenario, n_gateways: int, n_batches: int) -> tuple[float, list[bytes], float]:
    """Batches/s of model -> batch -> JSON; also returns the payloads and the mean readings per batch."""
    sim = msgspec.structs.replace(scenario.sim, step_s=10.0)
    fs = fleet_scenario(msgspec.structs.replace(scenario, sim=sim), n_gateways)
    factory = BatchFactory(fs, start_ms=int(time.time() * 1000) - 86_400_000)
    factory.prepare()
    ids = list(factory.seq)
    payloads: list[bytes] = []
    readings = 0
    t0 = time.perf_counter()
    for k in range(n_batches):
        batch = factory.batch(ids[k % len(ids)], k * 0.5)
        if batch is not None:
            readings += len(batch.readings)
            payloads.append(encode(batch))
    elapsed = time.perf_counter() - t0
    return len(payloads) / elapsed, payloads, readings / max(1, len(payloads))


def baseline(host: str, port: int, payloads: list[bytes], root: str) -> float:
    """Batches/s of one paho client publishing pre-encoded batches at QoS 1 until every PUBACK."""
    done = threading.Event()
    acked = 0
    lock = threading.Lock()

    def on_publish(client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        nonlocal acked
        with lock:
            acked += 1
            if acked == len(payloads):
                done.set()

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-{time.time_ns()}"
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        t0 = time.perf_counter()
        for i, p in enumerate(payloads):
            client.publish(f"{root}/v1/bench/gw-{i % 50}/up/telemetry", p, qos=1)
        if not done.wait(120):
            raise RuntimeError(f"baseline: only {acked} of {len(payloads)} PUBACKs")
        return len(payloads) / (time.perf_counter() - t0)
    finally:
        client.loop_stop()
        client.disconnect()


def fleet(scenario: Scenario, host: str, port: int, gateways: int, duration_s: float, root: str) -> float:
    """Achieved batches/s of the fleet asked for far more than it can do."""
    options = FleetOptions(
        gateways=gateways,
        rate=20_000.0,
        duration_s=duration_s,
        host=host,
        port=port,
        root=root,
        max_inflight=2000,
    )
    stats = asyncio.run(Fleet(scenario, options).run())
    if stats.failed:
        print(f"  fleet: {stats.failed} failed batches", file=sys.stderr)
    return stats.achieved_rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=100)
    ap.add_argument("--duration", type=float, default=5.0, help="fleet seconds per round")
    ap.add_argument("--batches", type=int, default=3000, help="batches for generate/baseline per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--broker", help="HOST:PORT of an existing broker (default: a private Mosquitto)")
    args = ap.parse_args()
    scenario = load_scenario()
    server = None
    if args.broker:
        host, _, port_s = args.broker.rpartition(":")
        port = int(port_s)
    else:
        server = mosquitto_server(Path(tempfile.mkdtemp(prefix="bench-fleet-")))
        server.start()
        host, port = server.host, server.port
    gen: list[float] = []
    base: list[float] = []
    flt: list[float] = []
    per_batch = 0.0
    try:
        for r in range(args.rounds):
            rate, payloads, per_batch = generate(scenario, args.gateways, args.batches)
            gen.append(rate)
            base.append(baseline(host, port, payloads, f"bench{r}"))
            flt.append(fleet(scenario, host, port, args.gateways, args.duration, f"bench{r}"))
            print(
                f"round {r + 1}: generate {gen[-1]:.0f}/s, baseline {base[-1]:.0f}/s, fleet {flt[-1]:.0f}/s"
            )
    finally:
        if server is not None:
            server.stop()
    g, b, f = statistics.median(gen), statistics.median(base), statistics.median(flt)
    print(
        f"\nmedians over {args.rounds} rounds ({args.gateways} gateways, {per_batch:.1f} readings per batch):"
    )
    print(f"  generate (models -> JSON, no network)   {g:8.0f} batches/s")
    print(f"  baseline (one paho client, QoS 1)       {b:8.0f} batches/s")
    print(
        f"  fleet    ({args.gateways} edge publishers, QoS 1)  {f:8.0f} batches/s  = {f / b:.2f} x baseline"
    )
    print(f"  fleet readings                          {f * per_batch:8.0f} readings/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
