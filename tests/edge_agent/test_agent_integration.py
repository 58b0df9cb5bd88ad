"""The agent against simulated devices and a real Mosquitto: values, outage, buffer cap, remote config."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from contract.codec import encode
from contract.messages import Command, ConfigUpdate
from contract.readings import Cellular, Energy, Machine
from edge_agent.agent import Agent
from edge_agent.main import load
from tests.edge_agent.devices import ATModem, ModbusDevice, energy_registers, machine_registers
from tests.edge_agent.helpers import Subscriber, agent_config, stored_readings
from tests.edge_agent.modbus_peers import Peer, Script, answer, request
from tests.servers import ServerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FAST = lambda attempt: 0.1  # noqa: E731  (injected backoff: retry quickly in tests)


@contextlib.asynccontextmanager
async def running(
    config: str, tmp: Path, *, reconnect_s: float = 0.1, device_backoff: Callable[[int], float] = FAST
) -> AsyncIterator[Agent]:
    path = tmp / "edge.toml"
    path.write_text(config)
    settings, table = load(str(path))
    agent = Agent(
        settings,
        file_config=table,
        version="test",
        device_backoff=device_backoff,
        mqtt_backoff=lambda attempt: reconnect_s,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


MACHINE: dict[str, Any] = dict(
    state=2,
    spindle_temp_c=61.3,
    motor_temp_c=-4.5,
    vibration_mm_s=2.31,
    spindle_load_pct=55.5,
    parts_total=70000,
    rejects_total=12,
)


async def test_values_from_devices_arrive_exactly(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    meter = ModbusDevice(
        energy_registers(
            power_kw=12.3, voltage_v=230.1, current_a=17.25, power_factor=0.93, energy_wh=123456789
        )
    )
    modem = ATModem()
    for d in (machine, meter, modem):
        await d.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    cfg = agent_config(
        tmp_path,
        port=mosquitto.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine"), ("meter-1", meter.port, "energy")],
        modems=[("modem-1", modem.port)],
    )
    try:
        async with running(cfg, tmp_path):
            await sub.wait_for(
                lambda: all(sub.readings(d) for d in ("cnc-1", "meter-1", "modem-1")), what="all devices"
            )
            m = sub.readings("cnc-1")[0].reading
            assert isinstance(m, Machine)
            assert msgspec.structs.asdict(m) | {"ts": 0} == msgspec.structs.asdict(
                Machine(
                    ts=0,
                    dev="cnc-1",
                    state="running",
                    spindle_temp_c=61.3,
                    motor_temp_c=-4.5,
                    vibration_mm_s=2.31,
                    spindle_load_pct=55.5,
                    parts_total=70000,
                    rejects_total=12,
                )
            )
            e = sub.readings("meter-1")[0].reading
            assert isinstance(e, Energy)
            assert (e.power_kw, e.voltage_v, e.current_a, e.power_factor, e.energy_kwh) == (
                12.3,
                230.1,
                17.25,
                0.93,
                123456.789,
            )
            c = sub.readings("modem-1")[0].reading
            assert isinstance(c, Cellular)
            assert (
                c.operator,
                c.tech,
                c.rsrp_dbm,
                c.rsrq_db,
                c.sinr_db,
                c.band,
                c.cell_id,
                c.lat,
                c.lon,
            ) == ("Viettel", "LTE", -95, -11, 13, "B3", 0x1A2B3C4, 20.8449, 106.6881)
            # A change on the device shows up in the next readings.
            await machine.set(0, [3])
            await sub.wait_for(
                lambda: any(getattr(r.reading, "state", None) == "fault" for r in sub.readings("cnc-1")),
                what="fault state",
            )
            await sub.wait_for(
                lambda: (s := sub.last_status()) is not None and s.uplink is not None, what="status"
            )
            st = sub.last_status()
            assert st is not None and st.state == "online" and st.agent_version == "test"
            assert st.uplink is not None and (st.uplink.operator, st.uplink.rsrp_dbm) == ("Viettel", -95)
        # Graceful stop: retained offline status.
        await sub.wait_for(
            lambda: (s := sub.last_status()) is not None and s.state == "offline", what="offline"
        )
        assert sub.rejected == 0
    finally:
        sub.close()
        for d in (machine, meter, modem):
            await d.stop()


async def test_broker_outage_loses_nothing(
    mosquitto_durable: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    await machine.start()
    sub = Subscriber(mosquitto_durable.host, mosquitto_durable.port, topic_root, f"sub-{unique}")
    cfg = agent_config(
        tmp_path,
        port=mosquitto_durable.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine")],
        poll_s=0.05,
    )
    try:
        async with running(cfg, tmp_path) as agent:
            await sub.wait_for(lambda: len(sub.readings()) >= 10, what="first readings")
            mosquitto_durable.stop()
            await sub.wait_for(
                lambda: not agent.publisher.connected and agent.buffer.stats().backlog >= 10,
                what="a backlog buffered during the outage",
            )
            mosquitto_durable.start()
            # Replay of the outage's backlog, paced, while live readings keep flowing.
            await sub.wait_for(
                lambda: agent.publisher.connected and agent.buffer.stats().to_send <= 1,
                timeout_s=30,
                what="backlog drained",
            )
        produced = agent.counters.readings
        await sub.wait_for(
            lambda: sub.count() >= produced,
            what="every reading",
            detail=lambda: (produced, sub.count(), sorted(sub.unique_batches()), agent.buffer.stats()),
        )
        batches = sub.unique_batches()
        assert sub.count() == produced
        # No batch lost: sequence numbers 0..n without a gap.
        assert sorted(batches) == list(range(max(batches) + 1))
        # In order per device with the original timestamps: by seq, timestamps strictly increase.
        stamps = [r.ts for seq in sorted(batches) for r in batches[seq]]
        assert all(a < b for a, b in itertools.pairwise(stamps))
    finally:
        sub.close()
        await machine.stop()


async def test_buffer_cap_drops_oldest_and_reports_it(
    mosquitto_durable: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    await machine.start()
    # Subscribe (persistent session) before the outage, so nothing published after it is missed.
    sub = Subscriber(mosquitto_durable.host, mosquitto_durable.port, topic_root, f"sub-{unique}")
    await sub.wait_for(sub.subscribed.is_set, what="subscriber's SUBACK")
    mosquitto_durable.stop()
    cfg = agent_config(
        tmp_path,
        port=mosquitto_durable.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine")],
        poll_s=0.02,
        buffer_max_readings=40,
        # No ingester confirms here: batches leave the buffer at their PUBACK, so the cap
        # counts only what the outage left unsent.
    ).replace("[buffer]\n", "[buffer]\nhold_until_confirmed = false\n")
    try:
        async with running(cfg, tmp_path) as agent:
            await sub.wait_for(lambda: agent.buffer.stats().dropped > 0, what="the cap dropping readings")
            st = agent.buffer.stats()
            assert st.dropped > 0 and st.backlog <= 40 and st.fill_pct >= 50
            kept, _ = await asyncio.to_thread(stored_readings, tmp_path / "state" / "buffer.sqlite")
            assert kept
            oldest_kept = min(kept)
            mosquitto_durable.start()
            await sub.wait_for(
                lambda: (s := sub.last_status()) is not None and (s.dropped or 0) > 0,
                what="dropped on status",
            )
            status = sub.last_status()
            assert status is not None and (status.dropped or 0) >= st.dropped
            await sub.wait_for(
                lambda: agent.publisher.connected and agent.buffer.stats().to_send <= 1,
                timeout_s=30,
                what="backlog drained",
            )
        produced, dropped = agent.counters.readings, agent.buffer.stats().dropped
        await sub.wait_for(
            lambda: sub.count() >= produced - dropped,
            what="kept readings",
            detail=lambda: (
                produced,
                dropped,
                sub.count(),
                sorted(sub.unique_batches()),
                agent.buffer.stats(),
            ),
        )
        assert sub.count() == produced - dropped
        # Drop-oldest: nothing older than what the buffer held during the outage ever arrives.
        assert min(r.reading.ts for r in sub.readings()) >= oldest_kept
    finally:
        sub.close()
        await machine.stop()


async def test_remote_config_rejected_then_applied_live(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    other = ModbusDevice(machine_registers(**{**MACHINE, "parts_total": 5}))
    for d in (machine, other):
        await d.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    cfg = agent_config(
        tmp_path, port=mosquitto.port, root=topic_root, modbus=[("cnc-1", machine.port, "machine")]
    )
    config_topic = f"{topic_root}/v1/p1/gw-1/down/config"
    try:
        async with running(cfg, tmp_path) as agent:
            await sub.wait_for(lambda: bool(sub.readings("cnc-1")), what="readings")
            first_hash = agent.config_hash
            bad = ConfigUpdate(
                v=1,
                config={
                    "collectors": [
                        {
                            "type": "modbus",
                            "devices": [
                                {
                                    "id": "cnc-1",
                                    "host": "127.0.0.1",
                                    "port": machine.port,
                                    "poll_interval_s": -1,
                                }
                            ],
                        }
                    ]
                },
            )
            sub.client.publish(config_topic, encode(bad), qos=1, retain=True)
            await sub.wait_for(
                lambda: (s := sub.last_status()) is not None and s.config_error is not None, what="rejection"
            )
            st = sub.last_status()
            assert (
                st is not None
                and "poll_interval_s" in (st.config_error or "")
                and st.config_hash == first_hash
            )
            good = ConfigUpdate(
                v=1,
                config={
                    "collectors": [
                        {
                            "type": "modbus",
                            "devices": [
                                {
                                    "id": "cnc-1",
                                    "host": "127.0.0.1",
                                    "port": machine.port,
                                    "poll_interval_s": 0.2,
                                },
                                {
                                    "id": "cnc-2",
                                    "host": "127.0.0.1",
                                    "port": other.port,
                                    "poll_interval_s": 0.2,
                                    "tags": {"line": "B"},
                                },
                            ],
                        }
                    ]
                },
            )
            sub.client.publish(config_topic, encode(good), qos=1, retain=True)
            await sub.wait_for(lambda: bool(sub.readings("cnc-2")), what="new device after live config")
            r = sub.readings("cnc-2")[0].reading
            assert isinstance(r, Machine) and r.parts_total == 5 and r.tags == {"line": "B"}
            await sub.wait_for(
                lambda: (
                    (s := sub.last_status()) is not None
                    and s.config_hash != first_hash
                    and s.config_error is None
                ),
                what="applied hash",
            )
            restart_needed = ConfigUpdate(v=1, config={"agent": {"park": "p1", "gateway": "other-gw"}})
            sub.client.publish(config_topic, encode(restart_needed), qos=1, retain=True)
            await sub.wait_for(
                lambda: "[agent]" in (((s := sub.last_status()) and s.config_error) or ""),
                what="agent change refused",
            )
            command_topic = f"{topic_root}/v1/p1/gw-1/down/command"
            for cmd in ("flush", "restart_collectors", "publish_status"):
                sub.client.publish(command_topic, encode(Command(v=1, cmd=cmd, id=f"c-{cmd}")), qos=1)
            await sub.wait_for(lambda: agent.counters.commands == 3, what="three commands handled")
            n = len(sub.readings("cnc-2"))
            await sub.wait_for(
                lambda: len(sub.readings("cnc-2")) > n, what="readings after restart_collectors"
            )
        sub.client.publish(config_topic, b"", qos=1, retain=True)
    finally:
        sub.close()
        for d in (machine, other):
            await d.stop()


async def test_failing_device_does_not_stop_the_others(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    await machine.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    dead_port = free_port()
    cfg = agent_config(
        tmp_path,
        port=mosquitto.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine"), ("cnc-dead", dead_port, "machine")],
        modems=[("modem-dead", free_port())],
    )
    try:
        async with running(cfg, tmp_path) as agent:
            await sub.wait_for(lambda: len(sub.readings("cnc-1")) >= 5, what="healthy device keeps reporting")
            assert "cnc-dead" in agent.counters.failing and "modem-dead" in agent.counters.failing
            assert agent.counters.device_errors >= 2
        assert not sub.readings("cnc-dead")
    finally:
        sub.close()
        await machine.stop()


async def test_a_failing_modbus_tcp_device_of_a_tick_group_waits_its_backoff_and_recovers(
    mosquitto: ServerProcess,
    topic_root: str,
    unique: str,
    tmp_path: Path,
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    machine = ModbusDevice(machine_registers(**MACHINE))
    await machine.start()
    words = machine_registers(**MACHINE)
    loop = asyncio.get_running_loop()
    connected_s: list[float] = []

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        connected_s.append(loop.time())
        if n <= 2:
            return  # the first two connections hang up at once
        while True:
            tid, unit, address, count = await request(reader)
            writer.write(answer(tid, unit, words[address : address + count]))

    p = await peer(flaky)
    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    cfg = agent_config(
        tmp_path,
        port=mosquitto.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine"), ("cnc-flaky", p.port, "machine")],
        poll_s=0.1,
    )
    try:
        async with running(cfg, tmp_path, device_backoff=lambda attempt: 0.5) as agent:
            await sub.wait_for(lambda: len(sub.readings("cnc-flaky")) >= 3, what="the flaky device recovers")
            assert "cnc-flaky" not in agent.counters.failing
            assert agent.counters.device_errors >= 2
        # Retried after its backoff (0.5 s), not on every 0.1 s tick of its group ...
        assert len(connected_s) >= 3
        assert connected_s[1] - connected_s[0] >= 0.45
        assert connected_s[2] - connected_s[1] >= 0.45
        # ... while its neighbour in the same group kept its rhythm.
        healthy = sub.readings("cnc-1")
        assert len(healthy) >= 10
        assert all(isinstance(r.reading, Machine) and r.reading.parts_total == 70000 for r in healthy)
    finally:
        sub.close()
        await machine.stop()
