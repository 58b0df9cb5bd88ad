"""The one-command demo: the whole platform in one process, on embedded defaults.

What runs (every part is the real code path, wired over loopback):

1. the embedded MQTT broker (amqtt, MQTT 3.1.1);
2. the firmware simulator with the default Hai Phong scenario: Modbus TCP machines, meters and
   sensors (one factory's behind an OPC UA server instead), AT-command modems, broadband probe
   targets, and the radio environment;
3. the ingester, writing to a DuckDB file;
4. optionally a short drive-test *survey*: the simulator's fleet mode replays a few simulated hours
   of mobile-probe measurements through the edge agent's publisher (survey vehicles ``*-survey*``),
   so the coverage map has history from the first minute; the vehicles then keep driving in real
   time at a gentle rate;
5. one edge agent per simulated gateway, reading the simulated devices over Modbus TCP (or an OPC UA
   subscription), AT commands and HTTP probes, buffering on disk and publishing batches;
6. the API with the built-in web dashboard.

Parts 1, 3 and 6 are ``parkwatch serve`` (:class:`parkwatch.serve.Platform`) with the embedded
broker on; the demo adds the simulator and the edge agents around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from parkwatch.serve import Platform
from settings.runtime import __version__

log = logging.getLogger(__name__)

DEMO_KEY_NAME = "demo-admin"
DEMO_OFFLINE_AFTER_S = 30
OUTAGE_GATEWAY = "td-gw-01"
OUTAGE_AFTER_S = 20.0
OUTAGE_FOR_S = 90.0
"""One gateway's agent stops 20 s after the agents start and comes back 90 s later: its offline
alarm is raised 30 s into the outage and clears when it is back (and suppresses its devices')."""
FIRST_FAULT_WITHIN_S = 90.0
"""Scheduled machine faults move earlier so that the first one shows within this many real seconds."""
MODEM_INTERVAL_S = 2.0
PROBE_INTERVAL_S = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What ``parkwatch demo`` was asked to do (see its ``--help``)."""

    duration_s: float | None = None
    data_dir: str | None = None
    mqtt_port: int = 1883
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    speed: float = 10.0
    survey_s: float = 12.0
    quiet: bool = False


# -- settings of each part, built from the scenario and the simulator's endpoints ----------------


def serve_settings(
    root: Path,
    scenario: Any,
    positions: dict[str, tuple[float, float]],
    *,
    mqtt_port: int,
    host: str,
    port: int,
    key_sha256: str,
    speed: float,
) -> Any:
    """What ``parkwatch serve`` runs for the demo: embedded broker, store in ``root``, the scenario.

    The ingester gets the gateways' fixed positions; the API gets the parks, factories and alarm
    rules of the scenario and one admin key. The simulated machines run ``speed`` times faster
    than real time, and the API measures against real time: ideal cycle times, the state bucket
    and the alarm rules' durations are divided by ``speed``, so a simulated 20-minute fault raises
    its alarm as it would in a plant.
    """
    from firmware_sim.opencellid import operator_names
    from settings.loader import settings_from_dict
    from settings.serve import ServeSettings

    def scaled(seconds: int) -> int:
        return max(1, round(seconds / speed))

    parks, machines, meters = [], [], []
    for park in scenario.parks:
        parks.append(
            {"id": park.id, "name": park.name, "boundary": [[lon, lat] for lat, lon in park.boundary]}
        )
        for gw in park.gateways:
            for m in gw.machines:
                machines.append(
                    {
                        "park": park.id,
                        "dev": m.id,
                        "gw": gw.id,
                        "factory": gw.factory or gw.id,
                        "line": m.line,
                        "ideal_cycle_s": m.cycle_s / speed,
                    }
                )
            for meter in gw.meters:
                meters.append({"park": park.id, "dev": meter.id, "gw": gw.id, "factory": gw.factory or gw.id})
    return settings_from_dict(
        ServeSettings,
        {
            "store": {"path": str(root / "parkwatch.duckdb"), "retention_days": 30},
            "embedded_broker": {"enabled": True, "host": "127.0.0.1", "port": mqtt_port},
            "broker": {"client_id": "pw-demo-ingest"},
            "ingest": {
                "spool_dir": str(root / "ingest-spool"),
                "metrics_enabled": False,
                "flush_interval_s": 0.5,
                "gateway_positions": {gw: {"lat": lat, "lon": lon} for gw, (lat, lon) in positions.items()},
            },
            "api": {
                "host": host,
                "port": port,
                "registry_path": str(root / "registry.sqlite"),
                "cache_ttl_s": 2.0,
                "road_lines_file": _road_lines_file(root, scenario),
            },
            # A demo has minutes of data, not weeks: fewer samples make a cell count.
            "coverage": {
                "min_samples": 2,
                "default_window_days": 1,
                "operators_by_plmn": operator_names(scenario),
            },
            "factory": {"machines": machines, "meters": meters, "state_bucket_s": scaled(60)},
            "alarms": {
                "rules": [
                    {
                        # The spindle runs at 60-70 °C; the wear before a fault drives it up.
                        "id": "spindle-hot",
                        "kind": "machine",
                        "field": "spindle_temp_c",
                        "op": ">",
                        "threshold": 72.0,
                        "deadband": 3.0,
                        "duration_s": scaled(60),
                        "priority": "high",
                    },
                    {
                        "id": "vibration-high",
                        "kind": "machine",
                        "field": "vibration_mm_s",
                        "op": ">",
                        "threshold": 7.1,
                        "deadband": 0.5,
                        "duration_s": scaled(30),
                        "priority": "medium",
                    },
                    {
                        "id": "pm25-high",
                        "kind": "environment",
                        "field": "pm25_ug_m3",
                        "op": ">",
                        "threshold": 50.0,
                        "deadband": 5.0,
                        "duration_s": scaled(300),
                        "priority": "low",
                    },
                    {
                        # Modems are read every 2 s (real time): 10 s buckets hold readings.
                        "id": "uplink-dead-zone",
                        "type": "uplink_rsrp_below",
                        "threshold": -115.0,
                        "deadband": 3.0,
                        "duration_s": 60,
                        "bucket_s": 10,
                        "priority": "medium",
                    },
                    {"id": "backlog-growing", "type": "backlog_growing", "threshold": 50, "duration_s": 120},
                    {
                        "id": "loss-high",
                        "type": "loss_above",
                        "threshold": 5.0,
                        "deadband": 1.0,
                        "priority": "low",
                    },
                ],
                "gateway_offline_after_s": DEMO_OFFLINE_AFTER_S,
                "machine_fault_after_s": scaled(60),
                "bucket_s": max(2, scaled(10)),  # polls every second: 1 s buckets would have holes
                "evaluate_interval_s": 10.0,
            },
            "parks": parks,
            "keys": [{"name": DEMO_KEY_NAME, "role": "admin", "sha256": key_sha256}],
        },
        where="demo settings",
    )


def agent_settings(
    endpoints_json: Path, gateway: str, root: Path, mqtt_port: int
) -> tuple[Any, dict[str, Any]]:
    """One edge agent's settings, as ``parkwatch edge init --endpoints`` would write them."""
    from edge_agent.init_config import from_endpoints, render
    from settings.edge import EdgeSettings
    from settings.loader import settings_from_dict

    v = from_endpoints(str(endpoints_json), gateway)
    v.broker_port = mqtt_port
    v.protocol = "3.1.1"
    v.state_dir = str(root / "edge" / gateway)
    table = tomllib.loads(render(v))
    table["agent"]["status_interval_s"] = 15.0
    for collector in table.get("collectors", []):
        if collector["type"] == "cellular":
            for modem in collector["modems"]:
                modem["interval_s"] = MODEM_INTERVAL_S
        elif collector["type"] == "broadband":
            collector["interval_s"] = PROBE_INTERVAL_S
            for target in collector["targets"]:
                target["download_bytes"] = 200_000
                target["upload_bytes"] = 50_000
    return settings_from_dict(EdgeSettings, table, where=f"demo agent {gateway}"), table


DEMO_KEY_FILE = "demo-admin.key"
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,200}")


def demo_key(root: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The demo's admin key: the one kept in ``root`` by an earlier run, or a new one kept there.

    Returns ``(key, reused)``. The file is the key's only copy besides the terminal, so it is
    written readable by its owner only.
    """
    path = root / DEMO_KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_text(encoding="ascii", errors="replace").strip()
        if _KEY_RE.fullmatch(kept):
            return kept, True
    key = make()
    tmp = path.with_name(DEMO_KEY_FILE + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    tmp.replace(path)
    return key, False


def import_scenario_sites(root: Path, scenario: Any, cells: Any) -> int:
    """Store the scenario's cells (OpenCelliD layout) in the demo's registry; returns how many."""
    from firmware_sim.opencellid import opencellid_csv
    from storage.cell_sites import CellSites, parse_opencellid_text

    parsed = parse_opencellid_text(opencellid_csv(scenario, cells, updated_s=int(time.time())))
    store = CellSites(root / "registry.sqlite")
    try:
        store.put(parsed.sites)
    finally:
        store.close()
    return len(parsed.sites)


def _register_sites(registry_path: str, endpoints: Any) -> None:
    """The fixed gateways' sites (with their positions) in the registry, as ``parkwatch gateway``
    would store them: the dashboard's fleet lists them apart from the mobile probes."""
    from storage.places import GatewaySite, Places

    places = Places(registry_path)
    try:
        for gw, g in endpoints.gateways.items():
            if not g.mobile:
                places.put_gateway(GatewaySite(gw=gw, park=g.park, lat=g.lat, lon=g.lon, description="fixed"))
    finally:
        places.close()


def _road_lines_file(root: Path, scenario: Any) -> str:
    """The survey vehicles' drive routes as a GeoJSON file of lines (the dashboard's offline map
    draws them as the parks' roads); empty when no gateway drives."""
    features = [
        {
            "type": "Feature",
            "properties": {"park": park.id, "gw": gw.id},
            "geometry": {
                "type": "LineString",
                "coordinates": [
                    [lon, lat]
                    for lat, lon in (
                        [*gw.route.waypoints, gw.route.waypoints[0]] if gw.route.loop else gw.route.waypoints
                    )
                ],
            },
        }
        for park in scenario.parks
        for gw in park.gateways
        if gw.route is not None
    ]
    if not features:
        return ""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "roads.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


def survey_scenario(scenario: Any) -> Any:
    """Only the mobile probes of ``scenario`` (the survey vehicles drive their routes)."""
    parks = [
        msgspec.structs.replace(p, gateways=[g for g in p.gateways if g.route is not None])
        for p in scenario.parks
    ]
    return msgspec.structs.replace(scenario, parks=[p for p in parks if p.gateways])


# -- running ---------------------------------------------------------------------------------------


class _Console:
    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(highlight=False, soft_wrap=True)

    def step(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[green]✓[/green] {text}")

    def print(self, text: str) -> None:
        self.console.print(text)


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or ``duration_s``; return the exit code."""
    with contextlib.ExitStack() as stack:
        if options.data_dir:
            root = Path(options.data_dir).resolve()
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parkwatch-demo-")))
        root.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(options, root))


async def _run(options: DemoOptions, root: Path) -> int:
    from api.auth import key_hash, new_key
    from edge_agent.agent import Agent
    from firmware_sim.clock import SimClock
    from firmware_sim.runner import Simulator
    from firmware_sim.scenario import load_scenario
    from settings.ports import PortBusyError, listen_socket

    ui = _Console(options.quiet)
    ui.print(f"[bold]parkwatch demo[/bold] {__version__} — data in {root}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scenario = early_faults(load_scenario(), options.speed)
    try:
        api_socket = listen_socket(options.api_host, options.api_port, what="API", option="--api-port")
    except PortBusyError as exc:
        raise RuntimeError(str(exc)) from None

    sim = Simulator(scenario, clock=SimClock(start_ms=int(time.time() * 1000), speed=options.speed))
    # The radio environment takes seconds to build: off the event loop, before the devices use it.
    radio = await asyncio.to_thread(lambda: sim.world.radio)
    endpoints = await sim.start()
    # The scenario's cells as imported sites: the map's site layer and each dead zone's nearest site.
    n_sites = await asyncio.to_thread(import_scenario_sites, root, scenario, radio.cells())
    endpoints_json = root / "sim-endpoints.json"
    endpoints_json.write_bytes(endpoints.to_json())
    n_dev = sum(len(g.devices) for g in endpoints.gateways.values())
    key, reused = demo_key(root, new_key)
    positions = {gw: (g.lat, g.lon) for gw, g in endpoints.gateways.items() if not g.mobile}
    platform = Platform(
        serve_settings(
            root,
            scenario,
            positions,
            mqtt_port=options.mqtt_port,
            host=options.api_host,
            port=options.api_port,
            key_sha256=key_hash(key),
            speed=options.speed,
        ),
        api_socket=api_socket,
    )
    agents: list[Agent] = []
    try:
        await platform.open()
        async with asyncio.TaskGroup() as tg:
            # ``parkwatch serve``: embedded broker, ingester, API and dashboard over one store.
            await platform.start(tg, stop)
            _register_sites(platform.registry.path, endpoints)
            ui.step(f"MQTT broker (embedded, MQTT 3.1.1) on mqtt://127.0.0.1:{options.mqtt_port}")
            ui.step(
                f"simulator: scenario {scenario.name!r}, {len(endpoints.gateways)} gateways, {n_dev} devices "
                f"on loopback, simulated time x{options.speed:g} (endpoints: {endpoints_json}); "
                f"{n_sites} cell sites imported"
            )
            ingester = platform.ingester
            await _wait_ready(ingester.ready, stop, "the ingester")
            ui.step(f"ingester → DuckDB {root / 'parkwatch.duckdb'}")

            if options.survey_s > 0:
                vehicles = _SurveyVehicles(options.mqtt_port)
                try:
                    seqs = await _survey(scenario, options, vehicles, ui)
                except BaseException:
                    await vehicles.aclose()
                    raise
                if seqs:
                    tg.create_task(_keep_surveying(scenario, options, vehicles, seqs, stop), name="survey")
                else:
                    await vehicles.aclose()

            for gw in endpoints.gateways:
                settings, table = agent_settings(endpoints_json, gw, root, options.mqtt_port)
                if gw == OUTAGE_GATEWAY:
                    tg.create_task(_outage(gw, settings, table, agents, ui, stop), name=f"edge-{gw}")
                    continue
                agent = Agent(settings, file_config=table, version=__version__)
                agents.append(agent)
                tg.create_task(agent.run(stop), name=f"edge-{gw}")
            ui.step(f"{len(endpoints.gateways)} edge agents (one per gateway) reading the simulated devices")

            base = platform.base_url
            ui.step(f"API on {base}/api/v1 (OpenAPI: {base}/docs)")
            ui.print("")
            ui.print(f"[bold]Dashboard:[/bold] {base}/dashboard/#key={key}")
            ui.print(f"[bold]API key (admin):[/bold] {key}")
            if options.data_dir:
                ui.print(
                    f"  {'the same key as last time, ' if reused else ''}kept in {root / DEMO_KEY_FILE} "
                    "(mode 0600) for the next run with this --data-dir"
                )
            ui.print(f'  e.g. curl -H "Authorization: Bearer {key}" {base}/api/v1/coverage/summary')
            ui.print(
                "Press Ctrl-C to stop."
                if options.duration_s is None
                else f"Stopping after {options.duration_s:g} s."
            )
            tg.create_task(_report(ingester, agents, ui, stop), name="report")
            await _until_done(options.duration_s, stop, platform.api_task)
            platform.stop_api()
            stop.set()
    finally:
        platform.stop_api()
        stop.set()
        await sim.aclose()
        await platform.aclose()
    stored = platform.ingester.metrics.readings_stored if platform.ingester is not None else 0
    ui.print(f"stopped: {stored} readings stored in {root / 'parkwatch.duckdb'}")
    return 0


def early_faults(scenario: Any, speed: float) -> Any:
    """``scenario`` with each machine's scheduled faults moved earlier (all by the same amount) so
    that none starts later than :data:`FIRST_FAULT_WITHIN_S` real seconds at ``speed``."""
    cap_h = FIRST_FAULT_WITHIN_S * speed / 3600.0
    replace = msgspec.structs.replace
    parks = []
    for park in scenario.parks:
        gateways = []
        for gw in park.gateways:
            machines = []
            for m in gw.machines:
                shift_h = max(0.0, min((f.at_h for f in m.faults), default=0.0) - cap_h)
                machines.append(replace(m, faults=[replace(f, at_h=f.at_h - shift_h) for f in m.faults]))
            gateways.append(replace(gw, machines=machines))
        parks.append(replace(park, gateways=gateways))
    return replace(scenario, parks=parks)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


async def _outage(
    gw: str, settings: Any, table: dict[str, Any], agents: list[Any], ui: _Console, stop: asyncio.Event
) -> None:
    """Run one gateway's agent with an outage: stop it after a while, start it again later."""
    from edge_agent.agent import Agent

    down = asyncio.Event()
    agent = Agent(settings, file_config=table, version=__version__)
    agents.append(agent)
    run = asyncio.create_task(agent.run(down), name=f"edge-{gw}-before-outage")
    stopped = await _stopped_within(stop, OUTAGE_AFTER_S)
    down.set()
    await run
    if stopped:
        return
    ui.step(
        f"outage: the edge agent of {gw} stopped for {OUTAGE_FOR_S:g} s (a gateway_offline alarm follows)"
    )
    if await _stopped_within(stop, OUTAGE_FOR_S):
        return
    back = Agent(settings, file_config=table, version=__version__)
    agents.append(back)
    ui.step(f"outage over: the edge agent of {gw} is back")
    await back.run(stop)


async def _wait_ready(ready: asyncio.Event, stop: asyncio.Event, what: str, timeout_s: float = 60.0) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await ready.wait()
    except TimeoutError:
        stop.set()
        raise RuntimeError(f"{what} did not start within {timeout_s:g} s") from None


SURVEY_VEHICLES_PER_ROUTE = 20
LIVE_SURVEY_RATE = 4.0
"""Batches per second of all survey vehicles together once the demo is live."""


async def _survey(
    scenario: Any, options: DemoOptions, vehicles: _SurveyVehicles, ui: _Console
) -> dict[str, int]:
    """A fast replay of a few simulated hours of drive tests; return each vehicle's next seq."""
    from firmware_sim.fleet import Fleet, FleetOptions

    survey = survey_scenario(scenario)
    n_routes = sum(1 for _ in survey.gateways())
    if not n_routes:
        return {}
    fleet = Fleet(
        survey,
        FleetOptions(
            gateways=n_routes * SURVEY_VEHICLES_PER_ROUTE,
            rate=350.0,
            duration_s=options.survey_s,
            port=options.mqtt_port,
            protocol="3.1.1",
            speed=5.0,
            step_s=10.0,
            id_prefix="survey",
        ),
        publisher_factory=vehicles.make,
    )
    stats = await fleet.run()
    ui.step(
        f"drive-test survey: {stats.batches} batches, {stats.readings} readings from "
        f"{stats.gateways} survey vehicles on {n_routes} routes"
    )
    return dict(fleet.factory.seq)


class _SurveyVehicles:
    """One MQTT connection per survey vehicle, kept across the fast replay and the live phase.

    Each vehicle uses the edge agent's publisher (birth status, Last Will). The fast replay's
    fleet does not close them, so the live phase goes on over the same connection: no disconnect
    in between, hence no Last Will that could mark a driving vehicle offline after its new birth
    status (a broker may publish a Will late or even after a clean DISCONNECT). The live phase
    closes them for good, with an ``offline`` status.
    """

    def __init__(self, mqtt_port: int) -> None:
        from edge_agent.publisher import Publisher
        from settings.common import BrokerSettings

        self._broker = BrokerSettings(host="127.0.0.1", port=mqtt_port, protocol="3.1.1")
        self._pubs: dict[str, Any] = {}
        self.handed_over = False
        """Set when the live phase takes over: from then on ``aclose`` really closes."""
        vehicles = self

        class Vehicle(Publisher):
            async def aclose(self, *, offline_status: bool = True, timeout_s: float = 5.0) -> None:
                if vehicles.handed_over:
                    await super().aclose(offline_status=offline_status, timeout_s=timeout_s)

        self._vehicle = Vehicle

    def make(self, park: str, gateway: str) -> Any:
        """The vehicle's publisher, created on first use (a fleet's publisher factory)."""
        from contract.messages import Status

        pub = self._pubs.get(gateway)
        if pub is None:

            def birth() -> Status:
                return Status(v=1, gw=gateway, state="online", ts=int(time.time() * 1000))

            pub = self._pubs[gateway] = self._vehicle(
                self._broker, park=park, gateway=gateway, client_id=f"pw-sim-{gateway}", birth=birth
            )
        return pub

    async def aclose(self) -> None:
        self.handed_over = True
        await asyncio.gather(*(p.aclose(timeout_s=2.0) for p in self._pubs.values()), return_exceptions=True)


async def _keep_surveying(
    scenario: Any, options: DemoOptions, vehicles: _SurveyVehicles, seqs: dict[str, int], stop: asyncio.Event
) -> None:
    """The survey vehicles go on driving in real time at a gentle rate until the demo stops.

    They continue their sequence numbers over the same connections (the loss ledger sees one
    unbroken stream) and stay online, instead of going silent and raising offline alarms a few
    minutes into the demo.
    """
    from firmware_sim.fleet import Fleet, FleetOptions

    survey = survey_scenario(scenario)
    vehicles.handed_over = True
    fleet = Fleet(
        survey,
        FleetOptions(
            gateways=len(seqs),
            rate=LIVE_SURVEY_RATE,
            duration_s=options.duration_s or 7 * 86400.0,
            port=options.mqtt_port,
            protocol="3.1.1",
            speed=1.0,
            id_prefix="survey",
        ),
        publisher_factory=vehicles.make,
    )
    fleet.factory.seq.update(seqs)
    run = asyncio.ensure_future(fleet.run())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([run, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await vehicles.aclose()


async def _report(ingester: Any, agents: list[Any], ui: _Console, stop: asyncio.Event) -> None:
    if ui.quiet:
        return
    last = -1
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await stop.wait()
        stored = ingester.metrics.readings_stored
        if stored != last:
            measured = sum(a.counters.readings for a in agents)
            failing = sum(len(a.counters.failing) for a in agents)
            ui.print(
                f"[dim]{time.strftime('%H:%M:%S')}  readings measured by the agents: {measured}  "
                f"stored: {stored}  failing devices: {failing}[/dim]"
            )
            last = stored


async def _until_done(duration_s: float | None, stop: asyncio.Event, api_task: asyncio.Task[None]) -> None:
    """Wait for the duration, a stop request (Ctrl-C, SIGTERM) or the API's end."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, api_task], timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
