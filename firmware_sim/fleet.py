"""Fleet mode: many virtual gateways publishing contract batches over MQTT (a load generator).

Virtual gateway ``i`` is a copy of scenario gateway ``i mod n`` (same park, devices and modems,
its own seed; copies of a mobile probe start at different points of its route) named
``<template id>-<prefix><i>``. Every batch holds one reading per device, taken straight from the
device and radio models (no sockets): machines, meters, environment sensors, one cellular
reading per modem with service (operator by network name, as ``AT+COPS?`` reports it) and one
broadband reading per probe target.

Each virtual gateway publishes through its own :class:`edge_agent.publisher.Publisher` (the edge
agent's publisher: QoS 1, persistent session, Last Will, birth status), so the broker sees one
connection per gateway, as in production. A dispatcher hands out batches round-robin at the total
rate; at most ``max_inflight`` batches wait for their PUBACK, so a slow broker lowers the
achieved rate instead of growing a queue.

Simulated time runs ``speed`` times faster than real time and is placed so that it reaches "now"
at the end of the run: readings are never stamped in the future (the ingester rejects those).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from contract.limits import MAX_AGE_MS
from contract.messages import Batch, Status
from contract.readings import AnyReading, kind_of
from edge_agent.errors import EdgeError
from firmware_sim.clock import SimClock
from firmware_sim.errors import SimError
from firmware_sim.readings import (
    broadband_reading,
    cellular_reading,
    energy_reading,
    environment_reading,
    machine_reading,
)
from firmware_sim.scenario import Gateway, Park, Scenario
from firmware_sim.world import World

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetOptions:
    """What ``parkwatch sim fleet`` was asked to do.

    Attributes:
        gateways: number of virtual gateways (one MQTT connection each).
        rate: batches per second, all gateways together.
        duration_s: how long to publish (real seconds).
        host, port, root, username, password, protocol: the broker and topic root.
        speed: simulated seconds per real second.
        step_s: device-model step in simulated seconds (coarser than ``run``'s, for throughput).
        max_inflight: batches waiting for their PUBACK, all gateways together.
        id_prefix: virtual gateway ids are ``<template id>-<id_prefix><i>``.
        connect_timeout_s: how long to wait for the connections before giving up.
    """

    gateways: int
    rate: float
    duration_s: float
    host: str = "127.0.0.1"
    port: int = 1883
    root: str = "parkwatch"
    username: str | None = None
    password: str | None = None
    protocol: str = "5"
    speed: float = 60.0
    step_s: float = 10.0
    max_inflight: int = 1000
    id_prefix: str = "f"
    connect_timeout_s: float = 15.0


@dataclass(slots=True, kw_only=True)
class FleetStats:
    """What the fleet sent. ``batches``/``readings``/``per_kind`` count acknowledged batches only."""

    gateways: int = 0
    connected: int = 0
    attempted: int = 0
    batches: int = 0
    readings: int = 0
    failed: int = 0
    per_kind: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    target_rate: float = 0.0

    @property
    def achieved_rate(self) -> float:
        """Acknowledged batches per second."""
        return self.batches / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "gateways": self.gateways,
            "connected": self.connected,
            "attempted": self.attempted,
            "batches": self.batches,
            "readings": self.readings,
            "failed": self.failed,
            "per_kind": dict(sorted(self.per_kind.items())),
            "elapsed_s": round(self.elapsed_s, 3),
            "target_rate": self.target_rate,
            "achieved_rate": round(self.achieved_rate, 2),
        }

    def summary(self) -> str:
        """A human summary."""
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.per_kind.items())) or "none"
        return (
            f"fleet: {self.gateways} gateways ({self.connected} connected), {self.elapsed_s:.1f} s, "
            f"target {self.target_rate:g} batches/s, achieved {self.achieved_rate:.1f} batches/s\n"
            f"  batches:  {self.batches} acknowledged, {self.failed} failed, {self.attempted} attempted\n"
            f"  readings: {self.readings}\n"
            f"  per kind: {kinds}"
        )


class BatchPublisher(Protocol):
    """What the fleet needs of a publisher (implemented by :class:`edge_agent.publisher.Publisher`)."""

    async def start(self) -> None: ...

    async def wait_connected(self, timeout_s: float | None = None) -> None: ...

    async def publish_batch(self, batch: Batch | bytes) -> None: ...

    async def aclose(self, *, offline_status: bool = True, timeout_s: float = 5.0) -> None: ...


PublisherFactory = Callable[[str, str], BatchPublisher]
"""(park id, gateway id) -> a publisher for that gateway."""


def fleet_scenario(scenario: Scenario, n: int, prefix: str = "f") -> Scenario:
    """The scenario with its gateways replaced by ``n`` virtual copies."""
    templates = list(scenario.gateways())
    if not templates:
        raise SimError(f"scenario {scenario.name!r} has no gateways to copy")
    per_park: dict[str, list[Gateway]] = {p.id: [] for p in scenario.parks}
    for i in range(n):
        park, gw = templates[i % len(templates)]
        route = gw.route
        if route is not None:
            copy = i // len(templates)
            route = msgspec.structs.replace(route, start_offset_m=route.start_offset_m + copy * 337.0)
        per_park[park.id].append(msgspec.structs.replace(gw, id=f"{gw.id}-{prefix}{i:05d}", route=route))
    parks: list[Park] = [msgspec.structs.replace(p, gateways=per_park[p.id]) for p in scenario.parks]
    return msgspec.structs.replace(scenario, parks=parks)


class BatchFactory:
    """Builds each virtual gateway's next batch from the models at a simulated time."""

    def __init__(self, scenario: Scenario, *, start_ms: int) -> None:
        self.scenario = scenario
        self.world = World(scenario, start_ms=start_ms)
        self.start_ms = start_ms
        self.seq: dict[str, int] = {gw.id: 0 for _, gw in scenario.gateways()}
        self._rng = {
            gw.id: random.Random(f"{scenario.sim.seed}:fleet:{gw.id}") for _, gw in scenario.gateways()
        }
        self._names = {op.id: op.name for op in scenario.operators}

    def readings(self, gateway_id: str, t_s: float) -> list[AnyReading]:
        """One reading per device of ``gateway_id`` at simulated time ``t_s``."""
        models = self.world.gateways[gateway_id]
        models.advance_to(t_s)
        gw = models.gateway
        ts = self.start_ms + int(t_s * 1000)
        out: list[AnyReading] = [machine_reading(m, ts_ms=ts) for m in models.machines.values()]
        out += [energy_reading(e, ts_ms=ts) for e in models.meters.values()]
        out += [environment_reading(s, ts_ms=ts) for s in models.environment.values()]
        lat, lon, _ = models.position(t_s)
        for modem in gw.modems:
            r = cellular_reading(
                self.world.link(gateway_id, modem, t_s),
                dev=modem.id,
                ts_ms=ts,
                operator_name=self._names[modem.operator],
                position=(lat, lon) if gw.mobile else None,
            )
            if r is not None:
                out.append(r)
        rng = self._rng[gateway_id]
        for name in gw.probe_targets:
            out.append(broadband_reading(self.scenario.profile(name), dev=f"bb-{name}", ts_ms=ts, rng=rng))
        return out

    def prepare(self) -> None:
        """Build the radio environment and the route tables now, not during the timed run."""
        for gateway_id in self.seq:
            gw = self.world.gateways[gateway_id].gateway
            for modem in gw.modems:
                self.world.link(gateway_id, modem, 0.0)

    def batch(self, gateway_id: str, t_s: float) -> Batch | None:
        """The gateway's next batch (its ``seq`` advances), or None when it has nothing to send."""
        readings = self.readings(gateway_id, t_s)
        if not readings:
            return None
        seq = self.seq[gateway_id]
        self.seq[gateway_id] = seq + 1
        return Batch(v=1, gw=gateway_id, seq=seq, readings=readings, sent=int(time.time() * 1000))


def _edge_publisher_factory(options: FleetOptions) -> PublisherFactory:
    from edge_agent.publisher import Publisher
    from settings.common import BrokerSettings

    broker = BrokerSettings(
        host=options.host,
        port=options.port,
        username=options.username or "",
        password=options.password or "",
        topic_root=options.root,
        protocol="3.1.1" if options.protocol == "3.1.1" else "5",
    )

    def make(park: str, gateway: str) -> BatchPublisher:
        return Publisher(
            broker,
            park=park,
            gateway=gateway,
            client_id=f"pw-sim-{gateway}",
            birth=lambda: Status(v=1, gw=gateway, state="online", ts=int(time.time() * 1000)),
        )

    return make


class Fleet:
    """Run the virtual gateways (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        options: FleetOptions,
        *,
        publisher_factory: PublisherFactory | None = None,
    ) -> None:
        if options.gateways < 1 or options.rate <= 0 or options.duration_s <= 0:
            raise SimError("gateways, rate and duration must be positive")
        self.options = options
        sim = msgspec.structs.replace(scenario.sim, step_s=max(scenario.sim.step_s, options.step_s))
        self.scenario = fleet_scenario(
            msgspec.structs.replace(scenario, sim=sim), options.gateways, options.id_prefix
        )
        now_ms = int(time.time() * 1000)
        lead_ms = int(max(0.0, options.speed - 1.0) * options.duration_s * 1000)
        if lead_ms > MAX_AGE_MS - 86_400_000:
            raise SimError(
                f"speed {options.speed:g} x duration {options.duration_s:g} s spans "
                f"{lead_ms / 86_400_000:.0f} simulated days; the first readings would be older than the "
                f"ingester accepts ({MAX_AGE_MS // 86_400_000} days): lower --speed or --duration"
            )
        self.clock = SimClock(start_ms=now_ms - lead_ms, speed=options.speed)
        self.factory = BatchFactory(self.scenario, start_ms=self.clock.start_ms)
        self._make = publisher_factory or _edge_publisher_factory(options)
        self.stats = FleetStats(gateways=options.gateways, target_rate=options.rate)

    async def _publish(self, pub: BatchPublisher, batch: Batch, sem: asyncio.Semaphore) -> None:
        try:
            await pub.publish_batch(batch)
        except (EdgeError, OSError) as exc:  # one failed batch is counted, the fleet goes on
            self.stats.failed += 1
            _log.warning("fleet: batch %s/%d not acknowledged: %s", batch.gw, batch.seq, exc)
        else:
            self.stats.batches += 1
            self.stats.readings += len(batch.readings)
            self.stats.per_kind.update(kind_of(r) for r in batch.readings)
        finally:
            sem.release()

    async def run(self, progress: Callable[[FleetStats], None] | None = None) -> FleetStats:
        """Connect, publish for ``duration_s`` at ``rate``, drain, disconnect; return the stats.

        Raises:
            SimError: no gateway could connect to the broker.
        """
        opts = self.options
        gateways = [(park.id, gw.id) for park, gw in self.scenario.gateways()]
        await asyncio.to_thread(self.factory.prepare)
        pubs = {gw: self._make(park, gw) for park, gw in gateways}
        try:
            for pub in pubs.values():
                await pub.start()
            results = await asyncio.gather(
                *(pub.wait_connected(opts.connect_timeout_s) for pub in pubs.values()), return_exceptions=True
            )
            self.stats.connected = sum(1 for r in results if not isinstance(r, BaseException))
            if self.stats.connected == 0:
                raise SimError(
                    f"no gateway could connect to mqtt://{opts.host}:{opts.port} within "
                    f"{opts.connect_timeout_s:g} s; is the broker running and are the credentials right?"
                )
            await self._dispatch(pubs, gateways, progress)
        finally:
            await asyncio.gather(
                *(pub.aclose(timeout_s=2.0) for pub in pubs.values()), return_exceptions=True
            )
        if progress is not None:
            progress(self.stats)
        return self.stats

    async def _dispatch(
        self,
        pubs: dict[str, BatchPublisher],
        gateways: list[tuple[str, str]],
        progress: Callable[[FleetStats], None] | None,
    ) -> None:
        opts = self.options
        sem = asyncio.Semaphore(opts.max_inflight)
        # Simulated time starts with the send window (connecting took a while).
        self.clock = SimClock(start_ms=self.clock.start_ms, speed=opts.speed)
        t0 = time.monotonic()
        last_progress = 0.0
        k = 0
        async with asyncio.TaskGroup() as tg:
            while True:
                now = time.monotonic() - t0
                if now >= opts.duration_s:
                    break
                due = min(int(now * opts.rate) + 1, int(opts.duration_s * opts.rate))
                while k < due:
                    gw_id = gateways[k % len(gateways)][1]
                    k += 1
                    batch = self.factory.batch(gw_id, self.clock.elapsed_s())
                    if batch is None:
                        continue
                    await sem.acquire()
                    self.stats.attempted += 1
                    tg.create_task(self._publish(pubs[gw_id], batch, sem))
                self.stats.elapsed_s = time.monotonic() - t0
                if progress is not None and now - last_progress >= 0.25:
                    progress(self.stats)
                    last_progress = now
                await asyncio.sleep(max(0.001, k / opts.rate - (time.monotonic() - t0)))
            self.stats.elapsed_s = time.monotonic() - t0
        # The TaskGroup waited for every outstanding PUBACK; the rate counts the send window only.


async def run_fleet_cli(
    scenario: Scenario, options: FleetOptions, *, summary_json: str | None, quiet: bool
) -> int:
    """Run the fleet with a rich progress display; print the summary; return the exit code."""
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    fleet = Fleet(scenario, options)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]fleet"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task("connecting", total=options.duration_s)

        def show(s: FleetStats) -> None:
            bar.update(
                task,
                completed=min(s.elapsed_s, options.duration_s),
                description=f"{s.batches} batches, {s.readings} readings, {s.failed} failed, "
                f"{s.achieved_rate:.0f}/s",
            )

        stats = await fleet.run(show)
    print(stats.summary())
    if summary_json:
        await asyncio.to_thread(Path(summary_json).write_text, json.dumps(stats.to_dict(), indent=2) + "\n")
    return 0 if stats.failed == 0 else 1
