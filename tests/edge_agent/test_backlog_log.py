"""The agent says when it starts buffering, replays a backlog and has drained it, with counts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.backlog_log import BacklogLog
from edge_agent.main import load
from tests.edge_agent.devices import ModbusDevice, machine_registers
from tests.edge_agent.helpers import agent_config
from tests.ingest.helpers import wait_until
from tests.servers import ServerProcess


def test_transitions_are_said_at_once_and_progress_at_most_every_period() -> None:
    b = BacklogLog(every_s=60.0)

    def say(t: float, up: bool, n: int) -> str | None:
        return b.observe(now_s=t, connected=up, batches=n, readings=n * 10, fill_pct=1.0)

    assert say(0, False, 0) is None  # start-up before the first connection: nothing lost yet
    assert say(1, True, 0) is None
    assert say(2, True, 1) is None
    assert (
        say(10, False, 1)
        == "uplink down: buffering readings on disk (1 batch(es), 10 reading(s) held, buffer 1 % full)"
    )
    assert say(30, False, 5) is None
    assert say(70, False, 9) == "still buffering for 60 s (9 batch(es), 90 reading(s) held, buffer 1 % full)"
    assert say(71, False, 9) is None
    assert (
        say(80, True, 12) == "uplink up: replaying a backlog of 12 batch(es) (120 reading(s)), oldest first"
    )
    assert say(100, True, 6) is None
    assert say(140, True, 4) == "replaying backlog: 4 batch(es) left of 12"
    assert say(150, True, 1) == "backlog drained: 12 batch(es) replayed in 70 s"
    assert say(151, True, 1) is None
    assert say(200, False, 1) is not None
    assert say(205, True, 0) == "uplink up after 5 s: nothing to replay"


def test_a_backlog_found_at_start_is_replayed_and_said() -> None:
    b = BacklogLog()
    assert b.observe(now_s=0, connected=False, batches=40, readings=400, fill_pct=2.0) is None
    line = b.observe(now_s=1, connected=True, batches=40, readings=400, fill_pct=2.0)
    assert line is not None and "backlog of 40 batch(es)" in line


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_agent_logs_buffering_replay_and_drained(
    mosquitto_durable: ServerProcess, topic_root: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.agent")
    machine = ModbusDevice(
        machine_registers(
            state=2,
            spindle_temp_c=50,
            motor_temp_c=40,
            vibration_mm_s=1,
            spindle_load_pct=50,
            parts_total=1,
            rejects_total=0,
        )
    )
    await machine.start()
    path = tmp_path / "edge.toml"
    path.write_text(
        agent_config(
            tmp_path,
            port=mosquitto_durable.port,
            root=topic_root,
            modbus=[("cnc-1", machine.port, "machine")],
            poll_s=0.05,
        )
    )
    settings, table = load(str(path))
    agent = Agent(
        settings, file_config=table, version="test", device_backoff=lambda a: 0.1, mqtt_backoff=lambda a: 0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))

    async def said(text: str, timeout_s: float = 30.0) -> str:
        def found() -> list[str]:
            return [r.getMessage() for r in caplog.records if text in r.getMessage()]

        await wait_until(lambda: found(), timeout_s=timeout_s, what=f"the log line {text!r}")
        return found()[-1]

    try:
        await agent.publisher.wait_connected(timeout_s=20)
        await wait_until(lambda: agent.counters.batches_acked >= 3, what="live batches acknowledged")
        mosquitto_durable.stop()
        assert "batch(es)" in await said("uplink down: buffering readings on disk")
        await wait_until(lambda: agent.buffer.stats().to_send >= 5, what="a backlog of 5 unpublished batches")
        mosquitto_durable.start()
        replay = await said("uplink up: replaying a backlog of")
        backlog = int(replay.split("backlog of ")[1].split()[0])
        assert backlog >= 5  # counted when the connection came back, before the replay started
        drained = await said("backlog drained:")
        assert drained.startswith(f"backlog drained: {backlog} batch(es) replayed in ")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await machine.stop()
