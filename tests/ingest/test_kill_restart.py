"""The ``parkwatch ingest`` process killed with SIGKILL mid-stream and restarted: exact count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.ingest.helpers import Publisher, batch_for
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    values = [value for key, _, value in (line.rpartition(" ") for line in text.splitlines()) if key == name]
    return float(values[0]) if values else -1.0


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch", "ingest", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait(pred, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkill_mid_stream_then_restart_exact_count(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.duckdb"
    mport = free_port()
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[broker]\nport = {mosquitto.port}\ntopic_root = "{topic_root}"\nreconnect_min_s = 0.1\n'
        f'[sink]\ntype = "duckdb"\npath = "{db}"\n'
        f'[ingest]\nclient_id = "ing-{unique}"\nspool_dir = "{tmp_path / "spool"}"\n'
        f"metrics_port = {mport}\nflush_interval_s = 0.05\nbatch_readings = 500\nmax_unacked = 100\n"
    )
    log = tmp_path / "ingest.log"
    batches = [batch_for(f"gw-{seq % 2}", seq, 50) for seq in range(300)]
    total = sum(len(b.readings) for b in batches)
    proc = _start(config, log)
    try:
        _wait(lambda: _metric(mport, "parkwatch_ingest_broker_connected") == 1.0, 20, "first ingester up")
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")

        def publish() -> None:
            for i in range(0, len(batches), 10):
                pub.publish_batches(topic_root, "hp-a", batches[i : i + 10])
                time.sleep(0.02)

        feeder = threading.Thread(target=publish)
        feeder.start()
        _wait(lambda: _metric(mport, "parkwatch_ingest_readings_total") >= total / 4, 30, "a quarter stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = _start(config, log)
        feeder.join(60)
        pub.close()
        _wait(lambda: _metric(mport, "parkwatch_ingest_broker_connected") == 1.0, 20, "second ingester up")
        # Settled when the (reloaded) loss ledger has seen every batch of both gateways and no
        # message waits for its ack, which follows the durable write.
        _wait(
            lambda: (
                all(
                    _metric(mport, f'parkwatch_ingest_ledger_received_total{{gw="gw-{g}"}}') == 150.0
                    for g in (0, 1)
                )
                and _metric(mport, "parkwatch_ingest_unacked_messages") == 0.0
            ),
            30,
            "every batch stored and acknowledged",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kinds = ("cellular", "machine", "energy", "generic")
    with duckdb.connect(str(db), read_only=True) as con:
        stored = sum(con.execute(f"SELECT count(*) FROM {k}").fetchone()[0] for k in kinds)  # type: ignore[index]
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT park, gw, dev, ts FROM machine)"
        ).fetchone()
        machines = con.execute("SELECT count(*) FROM machine").fetchone()
        ledger = con.execute(
            "SELECT gw, received FROM loss_ledger QUALIFY row_number() OVER (PARTITION BY gw ORDER BY ts DESC, received DESC) = 1 ORDER BY gw"
        ).fetchall()
    assert stored == total, log.read_text()[-3000:]
    assert distinct == machines
    assert ledger == [("gw-0", 150), ("gw-1", 150)]
