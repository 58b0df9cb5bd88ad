"""The agent reads the firmware simulator's devices; a subscriber gets exactly what they exposed.

The simulator's clock is frozen so that its devices expose fixed values during the test; the
expected values are computed from the simulator's own models with the quantisation of the
agreed device interface (x0.1 registers, float32, integer dB/dBm in ``+QENG``).
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from contract.readings import Cellular, Energy, Environment, Machine
from edge_agent.agent import Agent
from edge_agent.init_config import from_endpoints, write
from edge_agent.main import load
from firmware_sim.clock import SimClock
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario, load_scenario
from tests.edge_agent.helpers import Subscriber
from tests.servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

GATEWAY = "dv-gw-01"


def f32(value: float) -> bytes:
    return struct.pack(">f", value)


def tenth(value: float) -> float:
    return round(value * 10.0) / 10.0


async def test_agent_publishes_exactly_what_the_simulator_exposes(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    scenario: Scenario = load_scenario()
    frozen = SimClock(start_ms=0, speed=1.0, monotonic=lambda: 0.0)
    async with Simulator(scenario, clock=frozen, gateways=[GATEWAY]) as sim:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_bytes(sim.endpoints.to_json())
        # The field engineer's path: provision the config from the simulator's endpoints file.
        values = from_endpoints(str(endpoints), GATEWAY)
        values.broker_port, values.topic_root, values.state_dir = (
            mosquitto.port,
            topic_root,
            str(tmp_path / "state"),
        )
        values.system = False
        config = write(values, str(tmp_path / "edge.toml"), force=False)
        text = config.read_text().replace("poll_interval_s = 1.0", "poll_interval_s = 0.3")
        text = text.replace("interval_s = 10.0", "interval_s = 0.5").replace(
            "max_interval_s = 1.0", "max_interval_s = 0.2"
        )
        config.write_text(text)
        settings, table = load(str(config))
        agent = Agent(settings, file_config=table, version="test")
        sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        devices = [d for _, d in sim.endpoints.devices() if d.kind != "probe_target"]
        try:
            await sub.wait_for(
                lambda: all(sub.readings(d.id) for d in devices), timeout_s=30, what="every device"
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            sub.close()
        models = sim.world.gateways[GATEWAY]
        models.advance_to(0.0)
        for dev_id, m in models.machines.items():
            r = sub.readings(dev_id)[0].reading
            assert isinstance(r, Machine)
            assert (r.state, r.spindle_temp_c, r.motor_temp_c, r.spindle_load_pct) == (
                m.state,
                tenth(m.spindle_temp_c),
                tenth(m.motor_temp_c),
                tenth(m.spindle_load_pct),
            )
            assert r.vibration_mm_s == round(m.vibration_mm_s * 100.0) / 100.0
            assert (r.parts_total, r.rejects_total) == (m.parts_total, m.rejects_total)
        for dev_id, e in models.meters.items():
            r = sub.readings(dev_id)[0].reading
            assert isinstance(r, Energy) and r.power_kw is not None and r.voltage_v is not None
            assert f32(r.power_kw) == f32(e.power_kw) and f32(r.voltage_v) == f32(e.voltage_v)
            assert r.current_a is not None and f32(r.current_a) == f32(e.current_a)
            assert r.power_factor is not None and f32(r.power_factor) == f32(e.power_factor)
            assert r.energy_kwh == round(int(e.energy_wh) * 0.001, 6)
        for dev_id, s in models.environment.items():
            r = sub.readings(dev_id)[0].reading
            assert isinstance(r, Environment)
            assert (r.temp_c, r.humidity_pct, r.pm25_ug_m3, r.noise_dba, r.co2_ppm) == (
                tenth(s.temp_c),
                tenth(s.humidity_pct),
                tenth(s.pm25_ug_m3),
                tenth(s.noise_dba),
                round(s.co2_ppm),
            )
        gw = next(g for _, g in scenario.gateways() if g.id == GATEWAY)
        for spec in gw.modems:
            link = sim.world.link(GATEWAY, spec, 0.0)
            r = sub.readings(spec.id)[0].reading
            assert isinstance(r, Cellular) and link.cell is not None
            assert (r.operator, r.tech) == (scenario.operator(spec.operator).name, link.tech)
            assert (r.rsrp_dbm, r.rsrq_db, r.sinr_db) == (
                round(link.rsrp_dbm),
                round(link.rsrq_db),
                round(link.sinr_db),
            )
            assert (r.cell_id, r.pci, r.earfcn, r.mcc, r.mnc) == (
                link.cell.cell_id,
                link.cell.pci,
                link.cell.arfcn,
                link.cell.mcc,
                link.cell.mnc,
            )
        assert sub.rejected == 0
