"""Broker SIGKILLed before its first autosave: batches it acknowledged are lost, gap repair restores them.

Real Mosquitto 2 (persistence on, autosave far away), the real edge agent reading a real Modbus
device, a real ingester writing DuckDB. The ingester is stopped so the broker holds PUBACKed
batches in its session queue only in memory; the broker is killed and restarted on the same
port and config, forgets every session, the agent reconnects, a new ingester subscribes. The
batches the broker forgot are never confirmed; the agent resends them with their own sequence
numbers. Every reading the agent read is stored exactly once; the ledger's missing returns to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pytest

from edge_agent.agent import Agent
from edge_agent.main import load
from tests.conftest import _unavailable
from tests.edge_agent.devices import ModbusDevice, machine_registers
from tests.edge_agent.helpers import agent_config
from tests.ingest.helpers import ingest_settings, running, wait_until
from tests.servers import ServerError, ServerProcess, mosquitto_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@contextlib.asynccontextmanager
async def agent_running(config: str, tmp: Path) -> AsyncIterator[Agent]:
    path = tmp / "edge.toml"
    path.write_text(config)
    settings, table = load(str(path))
    agent = Agent(
        settings, file_config=table, version="test", device_backoff=lambda a: 0.1, mqtt_backoff=lambda a: 0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def _published_since(buffer: Path, seq: int) -> int:
    """Batches from ``seq`` on that the broker acknowledged (read beside the agent, WAL mode)."""
    with contextlib.closing(sqlite3.connect(buffer)) as con:
        row = con.execute(
            "SELECT count(*) FROM batches WHERE seq >= ? AND published_ms IS NOT NULL", (seq,)
        ).fetchone()
    return int(row[0])


def _stored(db: Path) -> tuple[int, int, int, int]:
    """(rows, distinct readings, ledger missing, ledger late) of gw-1."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (ts, dev)) FROM machine WHERE gw = 'gw-1'"
        ).fetchone() or (0, 0)
        ledger = con.execute(
            "SELECT missing, late FROM loss_ledger WHERE gw = 'gw-1' ORDER BY ts DESC, received DESC LIMIT 1"
        ).fetchone()
    assert ledger is not None
    return int(rows), int(distinct), int(ledger[0]), int(ledger[1])


async def test_broker_sigkill_before_autosave_loses_nothing(
    topic_root: str, unique: str, tmp_path: Path
) -> None:
    try:
        # The deploy config's persistence, with the first autosave far away: a SIGKILL loses
        # everything the broker held in memory (sessions, subscriptions, queued batches).
        broker: ServerProcess = mosquitto_server(tmp_path / "mosquitto", extra_conf="autosave_interval 3600")
        broker.start()
    except ServerError as exc:
        _unavailable(str(exc))
    machine = ModbusDevice(
        machine_registers(
            state=2,
            spindle_temp_c=50.0,
            motor_temp_c=40.0,
            vibration_mm_s=1.5,
            spindle_load_pct=50.0,
            parts_total=1,
            rejects_total=0,
        )
    )
    await machine.start()
    machine_up = True
    db = tmp_path / "store.duckdb"
    settings = ingest_settings(
        broker_port=broker.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
        confirm_interval_s=0.2,
    )
    config = agent_config(
        tmp_path,
        port=broker.port,
        root=topic_root,
        modbus=[("cnc-1", machine.port, "machine")],
        poll_s=0.02,
        extra="",
    ).replace("[buffer]\n", "[buffer]\nconfirm_grace_s = 1.0\n")
    try:
        async with agent_running(config, tmp_path) as agent:
            async with running(settings) as ing:
                await wait_until(lambda: agent.repair.confirmed_batches >= 5, 30, "first confirms")
                await wait_until(lambda: ing.metrics.readings_stored >= 100, 30, "first readings stored")
            # Ingester away: the broker PUBACKs the agent's batches and queues them, in memory only.
            first_lost = agent.buffer.stats().next_seq
            await wait_until(
                lambda: _published_since(tmp_path / "state" / "buffer.sqlite", first_lost) >= 10,
                30,
                "batches queued for the absent ingester",
            )
            broker.kill()
            connects = agent.publisher.connects
            broker.start()
            await wait_until(lambda: agent.publisher.connects > connects, 30, "agent reconnected")
            async with running(settings) as ing:
                await wait_until(lambda: agent.repair.resent_batches >= 10, 30, "lost batches resent")
                await machine.stop()  # no new readings: the books can be closed
                machine_up = False
                await wait_until(
                    lambda: agent.buffer.stats().batches == 0 and agent.buffer.stats().staged == 0,
                    30,
                    "every batch confirmed",
                )
            produced = agent.counters.readings
            repair = agent.repair
        rows, distinct, missing, late = _stored(db)
        assert produced > 100
        assert (rows, distinct) == (produced, produced)
        assert missing == 0
        assert late >= 10
        assert repair.resent_batches >= 10
        assert agent.buffer.stats().dropped == 0
        assert agent.buffer.stats().expired == 0
    finally:
        if machine_up:
            await machine.stop()
        broker.stop()
