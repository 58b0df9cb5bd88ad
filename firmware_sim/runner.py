"""Start every simulated device of a scenario on loopback and expose the endpoints.

::

    async with Simulator(load_scenario()) as sim:
        print(sim.endpoints.to_json())

All servers share the running asyncio loop. Device models advance lazily to the clock's current
simulated time whenever one of the gateway's devices is read, so nothing polls in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from firmware_sim.clock import SimClock
from firmware_sim.devices.at_modem import AtModemServer, GnssFix, ModemSnapshot
from firmware_sim.devices.modbus import UNIT_ID, ModbusDevice, ModbusRtuLine, RtuUnit
from firmware_sim.devices.probe_target import ProbeTarget
from firmware_sim.endpoints import DeviceEndpoint, GatewayEndpoints, OpcuaNodeEndpoint, SimEndpoints
from firmware_sim.registers import (
    ENERGY_REGISTERS,
    ENVIRONMENT_REGISTERS,
    MACHINE_REGISTERS,
    energy_registers,
    environment_registers,
    machine_registers,
)
from firmware_sim.scenario import Gateway, ModemSpec, Scenario
from firmware_sim.world import GatewayModels, World

_log = logging.getLogger(__name__)


class _Server(Protocol):
    port: int

    async def aclose(self) -> None: ...


class Simulator:
    """The devices of a scenario, started by ``async with`` (or :meth:`start`/:meth:`aclose`).

    Args:
        scenario: the world to simulate.
        clock: simulated time; default: the scenario's ``[sim]`` start and speed.
        host, host6: loopback addresses to bind (probe targets bind both).
        gateways: only start these gateway ids (default: all).
        ipv6: also bind probe targets on ``host6``.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        host6: str = "::1",
        gateways: list[str] | None = None,
        ipv6: bool = True,
    ) -> None:
        self.scenario = scenario
        self.clock = clock or SimClock(start_ms=scenario.sim.start_ms, speed=scenario.sim.speed)
        self.world = World(scenario, start_ms=self.clock.start_ms)
        self.host = host
        self.host6 = host6
        self.ipv6 = ipv6
        self._only = set(gateways) if gateways is not None else None
        self._servers: list[_Server] = []
        self._endpoints: SimEndpoints | None = None

    @property
    def endpoints(self) -> SimEndpoints:
        """The running endpoints (after start)."""
        if self._endpoints is None:
            raise RuntimeError("the simulator is not started")
        return self._endpoints

    def _registers_fn(self, models: GatewayModels, kind: str, dev_id: str) -> Callable[[], list[int]]:
        def read() -> list[int]:
            models.advance_to(self.clock.elapsed_s())
            if kind == "machine":
                return machine_registers(models.machines[dev_id])
            if kind == "energy":
                return energy_registers(models.meters[dev_id])
            return environment_registers(models.environment[dev_id])

        return read

    def rtu_line(self, gateway: str, *, answer_delay_s: float = 0.0) -> ModbusRtuLine:
        """The Modbus devices of one started gateway on an RTU line, unit ids 1..n in endpoint order.

        The line serves the same live registers as the devices' Modbus TCP servers. Start it
        with :meth:`ModbusRtuLine.start_serial` (one end of a pty pair) or
        :meth:`ModbusRtuLine.start_tcp` (RTU over TCP); the caller closes it.

        Raises:
            KeyError: the gateway is not one of the started gateways.
        """
        models = self.world.gateways[gateway]
        units = [
            RtuUnit(unit_id=i, count=d.registers or 0, registers=self._registers_fn(models, d.kind, d.id))
            for i, d in enumerate(
                (d for d in self.endpoints.gateways[gateway].devices if d.unit is not None), start=1
            )
        ]
        return ModbusRtuLine(
            name=f"{gateway}/rtu", units=units, answer_delay_s=answer_delay_s, host=self.host
        )

    def _snapshot_fn(self, gw: Gateway, modem: ModemSpec) -> Callable[[], ModemSnapshot]:
        models = self.world.gateways[gw.id]
        name = self.scenario.operator(modem.operator).name
        gnss = modem.gnss if modem.gnss is not None else gw.mobile

        def snapshot() -> ModemSnapshot:
            t = self.clock.elapsed_s()
            fix = None
            if gnss:
                lat, lon, course = models.position(t)
                speed = gw.route.speed_kmh if gw.route is not None else 0.0
                fix = GnssFix(lat=lat, lon=lon, alt_m=4.0, course_deg=course, speed_kmh=speed)
            return ModemSnapshot(
                link=self.world.link(gw.id, modem, t),
                operator_name=name,
                now_ms=self.clock.start_ms + int(t * 1000),
                fix=fix,
            )

        return snapshot

    async def _start_opcua(self, gw: Gateway, models: GatewayModels) -> DeviceEndpoint:
        """The gateway's machines, meters and sensors behind one OPC UA server."""
        from firmware_sim.devices.opcua_server import OpcuaDevice, OpcuaFactoryServer, model_values

        def advance() -> None:
            models.advance_to(self.clock.elapsed_s())

        devices = [
            *[OpcuaDevice(m.id, "machine", model_values(models.machines[m.id])) for m in gw.machines],
            *[OpcuaDevice(m.id, "energy", model_values(models.meters[m.id])) for m in gw.meters],
            *[
                OpcuaDevice(e.id, "environment", model_values(models.environment[e.id]))
                for e in gw.environment
            ],
        ]
        server = OpcuaFactoryServer(
            name=gw.id, factory=gw.factory, devices=devices, advance=advance, host=self.host
        )
        self._servers.append(server)
        port = await server.start()
        nodes = [
            OpcuaNodeEndpoint(node_id=server.node_id(d.id, f), device=d.id, kind=d.kind, field=f)
            for d in devices
            for f in d.values()
        ]
        return DeviceEndpoint(
            id="opcua", kind="opcua_server", host=self.host, port=port, url=server.url, nodes=nodes
        )

    async def start(self) -> SimEndpoints:
        """Start every device; return the endpoints.

        Raises:
            DeviceStartError: a device could not listen (the ones already started are stopped).
        """
        try:
            return await self._start()
        except BaseException:
            await self.aclose()
            raise

    async def _start(self) -> SimEndpoints:
        gateways: dict[str, GatewayEndpoints] = {}
        seed = self.scenario.sim.seed
        _ = self.world.radio  # build the radio environment once, before the first AT command
        for park, gw in self.scenario.gateways():
            if self._only is not None and gw.id not in self._only:
                continue
            models = self.world.gateways[gw.id]
            devices: list[DeviceEndpoint] = []
            if gw.opcua:
                devices.append(await self._start_opcua(gw, models))
            specs: list[tuple[str, str, int, str | None]] = (
                []
                if gw.opcua
                else [
                    *[("machine", m.id, MACHINE_REGISTERS, m.line) for m in gw.machines],
                    *[("energy", m.id, ENERGY_REGISTERS, None) for m in gw.meters],
                    *[("environment", e.id, ENVIRONMENT_REGISTERS, None) for e in gw.environment],
                ]
            )
            for kind, dev_id, count, line in specs:
                mb = ModbusDevice(
                    name=f"{gw.id}/{dev_id}",
                    count=count,
                    registers=self._registers_fn(models, kind, dev_id),
                    host=self.host,
                )
                self._servers.append(mb)
                port = await mb.start()
                devices.append(
                    DeviceEndpoint(
                        id=dev_id,
                        kind=kind,  # type: ignore[arg-type]
                        host=self.host,
                        port=port,
                        unit=UNIT_ID,
                        registers=count,
                        line=line,
                    )
                )
            for modem in gw.modems:
                at = AtModemServer(
                    name=f"{gw.id}/{modem.id}", snapshot=self._snapshot_fn(gw, modem), host=self.host
                )
                self._servers.append(at)
                port = await at.start()
                devices.append(
                    DeviceEndpoint(
                        id=modem.id,
                        kind="modem",
                        host=self.host,
                        port=port,
                        operator=modem.operator,
                        operator_name=self.scenario.operator(modem.operator).name,
                        tech=modem.tech,
                        gnss=modem.gnss if modem.gnss is not None else gw.mobile,
                    )
                )
            for name in gw.probe_targets:
                hosts = (self.host, self.host6) if self.ipv6 else (self.host,)
                target = ProbeTarget(self.scenario.profile(name), seed=f"{seed}:{gw.id}", hosts=hosts)
                self._servers.append(target)
                port = await target.start()
                devices.append(
                    DeviceEndpoint(
                        id=f"bb-{name}",
                        kind="probe_target",
                        host=self.host,
                        host6=self.host6 if self.ipv6 else None,
                        port=port,
                        profile=name,
                    )
                )
            gateways[gw.id] = GatewayEndpoints(
                park=park.id, lat=gw.lat, lon=gw.lon, mobile=gw.mobile, devices=devices
            )
        self._endpoints = SimEndpoints(
            scenario=self.scenario.name,
            seed=seed,
            speed=self.clock.speed,
            start_ms=self.clock.start_ms,
            gateways=gateways,
        )
        _log.info("simulator started: %d gateways, %d devices", len(gateways), len(self._servers))
        return self._endpoints

    async def aclose(self) -> None:
        """Stop every device."""
        servers, self._servers = self._servers, []
        for s in reversed(servers):
            await s.aclose()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
