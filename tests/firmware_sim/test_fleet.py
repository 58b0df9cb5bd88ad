"""Fleet mode: valid contract batches at the asked rate, through a fake publisher and a real Mosquitto."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import decode_batch, encode
from contract.messages import Batch
from contract.readings import kind_of
from firmware_sim.errors import SimError
from firmware_sim.fleet import Fleet, FleetOptions, fleet_scenario
from firmware_sim.scenario import Scenario
from tests.servers import ServerProcess


class MemoryPublisher:
    """In-memory stand-in for the edge agent's publisher (same protocol)."""

    def __init__(self, park: str, gateway: str, sink: list[tuple[str, bytes]]) -> None:
        self.park = park
        self.gateway = gateway
        self.sink = sink
        self.closed = False

    async def start(self) -> None:
        return None

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        return None

    async def publish_batch(self, batch: Batch | bytes) -> None:
        await asyncio.sleep(0)
        self.sink.append((self.park, batch if isinstance(batch, bytes) else encode(batch)))

    async def aclose(self, *, offline_status: bool = True, timeout_s: float = 5.0) -> None:
        self.closed = True


def test_fleet_scenario_copies_gateways(scenario: Scenario) -> None:
    fs = fleet_scenario(scenario, 25)
    gws = [gw for _, gw in fs.gateways()]
    assert len(gws) == 25 and len({g.id for g in gws}) == 25
    mobile = [g for g in gws if g.route is not None]
    assert len({g.route.start_offset_m for g in mobile if g.route}) > 1


async def test_fleet_sends_valid_batches_at_the_rate(scenario: Scenario) -> None:
    sink: list[tuple[str, bytes]] = []
    pubs: list[MemoryPublisher] = []

    def factory(park: str, gw: str) -> MemoryPublisher:
        pubs.append(MemoryPublisher(park, gw, sink))
        return pubs[-1]

    options = FleetOptions(gateways=6, rate=40.0, duration_s=1.0, speed=120.0)
    stats = await Fleet(scenario, options, publisher_factory=factory).run()
    assert all(p.closed for p in pubs)
    assert stats.batches == len(sink) == stats.attempted
    assert 30 <= stats.batches <= 41
    seqs: dict[str, list[int]] = {}
    kinds: Counter[str] = Counter()
    now = int(time.time() * 1000)
    for _, payload in sink:
        decoded = decode_batch(payload)
        assert decoded.rejected == []
        assert all(r.ts <= now for r in decoded.readings)
        seqs.setdefault(decoded.gw, []).append(decoded.seq)
        kinds.update(kind_of(r) for r in decoded.readings)
    assert len(seqs) == 6
    assert all(s == list(range(len(s))) for s in seqs.values())
    assert kinds == stats.per_kind and sum(kinds.values()) == stats.readings
    assert {"machine", "energy", "environment", "cellular", "broadband"} <= set(kinds)


@pytest.mark.integration
async def test_fleet_publishes_through_the_edge_publisher_to_mosquitto(
    mosquitto: ServerProcess, scenario: Scenario, topic_root: str
) -> None:
    received: list[bytes] = []
    seen: set[tuple[str, int]] = set()
    cond = threading.Condition()
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        d = decode_batch(payload)
        with cond:
            received.append(payload)
            seen.add((d.gw, d.seq))
            cond.notify_all()

    def wait_for(n: int) -> bool:
        with cond:
            return cond.wait_for(lambda: len(seen) >= n, timeout=10)

    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"sub-{topic_root}")
    sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{topic_root}/v1/+/+/up/telemetry", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = on_message
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        assert await asyncio.to_thread(subscribed.wait, 10)
        options = FleetOptions(
            gateways=4, rate=30.0, duration_s=1.0, host=mosquitto.host, port=mosquitto.port, root=topic_root
        )
        stats = await Fleet(scenario, options).run()
        assert await asyncio.to_thread(wait_for, stats.batches)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert stats.connected == 4 and stats.failed == 0 and stats.batches >= 25
    unique = {(d.gw, d.seq): d for d in map(decode_batch, received)}
    assert len(unique) == stats.batches
    assert sum(len(d.readings) for d in unique.values()) == stats.readings


def test_fleet_refuses_readings_older_than_the_ingester_accepts(scenario: Scenario) -> None:
    with pytest.raises(SimError, match="lower --speed or --duration"):
        Fleet(scenario, FleetOptions(gateways=1, rate=1.0, duration_s=86_400.0, speed=60.0))
