"""SIGKILL the agent process with a backlog on disk; the restarted agent replays it. Last Will on kill."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.edge_agent.devices import ModbusDevice, machine_registers
from tests.edge_agent.helpers import Subscriber, agent_config, stored_readings
from tests.servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent.main", str(config)], stdout=out, stderr=subprocess.STDOUT
        )


async def until(pred: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait until the agent's buffer file (another process's state) satisfies ``pred``, or the
    timeout passes (the caller's assertion then says what is missing)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def test_sigkill_then_restart_replays_backlog_and_last_will_fires(
    mosquitto_durable: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    machine = ModbusDevice(
        machine_registers(
            state=2,
            spindle_temp_c=61.3,
            motor_temp_c=40.0,
            vibration_mm_s=2.31,
            spindle_load_pct=55.5,
            parts_total=7,
            rejects_total=1,
        )
    )
    await machine.start()
    broker = mosquitto_durable
    broker.stop()
    config = tmp_path / "edge.toml"
    config.write_text(
        agent_config(
            tmp_path,
            port=broker.port,
            root=topic_root,
            modbus=[("cnc-1", machine.port, "machine")],
            poll_s=0.05,
        )
    )
    log = tmp_path / "agent.log"
    agent = start_agent(config, log)
    sub: Subscriber | None = None
    try:
        db = tmp_path / "state" / "buffer.sqlite"
        await until(lambda: db.exists() and len(stored_readings(db)[0]) >= 30)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        backlog, seqs = stored_readings(db)
        assert len(backlog) >= 30, log.read_text()[-2000:]
        assert seqs[:1] == [0]

        broker.start()
        sub = Subscriber(broker.host, broker.port, topic_root, f"sub-{unique}")
        agent = start_agent(config, log)
        await sub.wait_for(
            lambda: backlog <= {r.reading.ts for r in sub.readings()}, timeout_s=30, what="backlog replayed"
        )
        got = sub.readings()
        assert {r.seq for r in got} >= set(seqs)
        # Replayed batches keep their sequence numbers: no gap from 0 to the newest seen.
        seen = sorted({r.seq for r in got})
        assert seen == list(range(seen[-1] + 1))
        await sub.wait_for(lambda: (s := sub.last_status()) is not None and s.state == "online", what="birth")

        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        # keepalive is 30 s by default, but a killed process's socket closes at once: the broker
        # notices immediately and publishes the Last Will.
        await sub.wait_for(
            lambda: (s := sub.last_status()) is not None and s.state == "offline", what="last will"
        )
        assert sub.rejected == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        if sub is not None:
            sub.close()
        await machine.stop()
