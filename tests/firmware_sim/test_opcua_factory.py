"""The simulated OPC UA factory (``opcua = true`` gateways) read with a plain asyncua client.

The truth is a second, independently built :class:`~firmware_sim.world.World` stepped to the same
simulated time: the server must expose exactly the machines, meters and sensors of the scenario,
with the values and states their models have then.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent

from contract.readings import measurement_fields
from firmware_sim.clock import SimClock
from firmware_sim.readings import energy_reading, environment_reading, machine_reading
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario
from firmware_sim.world import World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def truth(scenario: Scenario, start_ms: int, t_s: float) -> dict[tuple[str, str], Any]:
    """(device, field) -> value of vsip-gw-01's devices at simulated time ``t_s``."""
    world = World(scenario, start_ms=start_ms)
    models = world.gateways["vsip-gw-01"]
    models.advance_to(t_s)
    readings = [
        *[machine_reading(m, ts_ms=0) for m in models.machines.values()],
        *[energy_reading(e, ts_ms=0) for e in models.meters.values()],
        *[environment_reading(s, ts_ms=0) for s in models.environment.values()],
    ]
    return {
        (r.dev, f): getattr(r, f)
        for r in readings
        for f in measurement_fields(type(r))
        if getattr(r, f) is not None
    }


async def test_the_opcua_factory_serves_the_scenarios_devices_and_their_states(scenario: Scenario) -> None:
    now = [1000.0]
    clock = SimClock(start_ms=1_767_225_600_000, speed=10.0, monotonic=lambda: now[0])
    gw = next(g for _, g in scenario.gateways() if g.id == "vsip-gw-01")
    assert gw.opcua
    async with Simulator(scenario, clock=clock, gateways=["vsip-gw-01"], ipv6=False) as sim:
        devices = sim.endpoints.gateways["vsip-gw-01"].devices
        (server,) = [d for d in devices if d.kind == "opcua_server"]
        # Its machines, meters and sensors are behind OPC UA only, not also on Modbus TCP.
        assert not [d for d in devices if d.kind in ("machine", "energy", "environment")]
        assert server.url is not None and server.nodes is not None
        served = {n.device for n in server.nodes}
        assert served == {m.id for m in gw.machines} | {m.id for m in gw.meters} | {
            e.id for e in gw.environment
        }

        client = Client(server.url, timeout=10)
        async with client:
            expected = truth(scenario, clock.start_ms, 0.0)
            nodes = [client.get_node(n.node_id) for n in server.nodes]
            got = dict(
                zip([(n.device, n.field) for n in server.nodes], await client.read_values(nodes), strict=True)
            )
            assert got == expected
            assert {v for (d, f), v in got.items() if f == "state"} <= {
                "off",
                "idle",
                "running",
                "fault",
                "setup",
            }

            # An hour of simulated time later the next scan shows the models an hour on.
            sub = await client.create_subscription(50, handler=None)
            temp = next(n for n in server.nodes if n.field == "temp_c")
            await sub.subscribe_data_change(client.get_node(temp.node_id))
            first = await asyncio.wait_for(sub.next_event(None), 10)  # the initial value
            assert isinstance(first, DataChangeEvent)
            now[0] += 360.0  # x10: 3600 simulated seconds
            changed = await asyncio.wait_for(sub.next_event(None), 10)
            assert isinstance(changed, DataChangeEvent) and changed.value != first.value
            later = truth(scenario, clock.start_ms, 3600.0)
            got = dict(
                zip([(n.device, n.field) for n in server.nodes], await client.read_values(nodes), strict=True)
            )
            assert got == later and got != expected
            await sub.delete()


def test_endpoints_round_trip_with_the_opcua_node_map() -> None:
    from firmware_sim.endpoints import DeviceEndpoint, OpcuaNodeEndpoint

    dev = DeviceEndpoint(
        id="opcua",
        kind="opcua_server",
        host="127.0.0.1",
        port=4840,
        url="opc.tcp://127.0.0.1:4840/parkwatch/gw",
        nodes=[
            OpcuaNodeEndpoint(node_id="ns=2;s=cnc-01.state", device="cnc-01", kind="machine", field="state")
        ],
    )
    assert msgspec.json.decode(msgspec.json.encode(dev), type=DeviceEndpoint) == dev
