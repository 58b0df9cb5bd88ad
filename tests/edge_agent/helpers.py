"""Test helpers: an MQTT subscriber that records batches and statuses, and agent configs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import decode_batch, decode_message
from contract.messages import Status
from contract.readings import AnyReading


@dataclass(frozen=True)
class Received:
    seq: int
    reading: AnyReading


class Subscriber:
    """Records every batch and status under ``root`` (persistent session, QoS 1)."""

    def __init__(self, host: str, port: int, root: str, client_id: str) -> None:
        self.batches: list[tuple[int, list[AnyReading]]] = []
        self.statuses: list[Status] = []
        self.rejected = 0
        self._lock = threading.Lock()
        self.root = root
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        # paho's hints say int, but the delays are seconds added to a float clock: fractions work.
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/v1/+/+/up/#", qos=1)
        self.subscribed = threading.Event()
        """Set on the broker's SUBACK: from then on nothing published under ``root`` is missed."""
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic.endswith("/up/telemetry"):
                d = decode_batch(bytes(msg.payload))
                self.rejected += len(d.rejected)
                self.batches.append((d.seq, d.readings))
            elif msg.topic.endswith("/up/status") and msg.payload:
                self.statuses.append(decode_message(bytes(msg.payload), Status))

    def readings(self, dev: str | None = None) -> list[Received]:
        with self._lock:
            return [Received(seq, r) for seq, rs in self.batches for r in rs if dev is None or r.dev == dev]

    def unique_batches(self) -> dict[int, list[AnyReading]]:
        """Batches by seq; a redelivered seq must carry exactly the same readings."""
        with self._lock:
            out: dict[int, list[AnyReading]] = {}
            for seq, rs in self.batches:
                assert out.setdefault(seq, rs) == rs, f"seq {seq} delivered with different readings"
            return out

    def count(self) -> int:
        """Readings received, redeliveries of a batch counted once."""
        return sum(len(rs) for rs in self.unique_batches().values())

    def last_status(self) -> Status | None:
        with self._lock:
            return self.statuses[-1] if self.statuses else None

    async def wait_for(
        self,
        pred: Callable[[], bool],
        timeout_s: float = 15.0,
        what: str = "condition",
        detail: Callable[[], object] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {detail() if detail else ''}")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_config(
    tmp: Path,
    *,
    port: int,
    root: str,
    modbus: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
    modems: list[tuple[str, int]] = (),  # type: ignore[assignment]
    poll_s: float = 0.2,
    extra: str = "",
    buffer_max_readings: int = 100000,
    username: str = "",
    password: str = "",
) -> str:
    """A TOML agent config for tests."""
    lines = [
        "[agent]",
        'park = "p1"',
        'gateway = "gw-1"',
        f'state_dir = "{tmp}/state"',
        "status_interval_s = 0.5",
        "shutdown_grace_s = 5.0",
        "[broker]",
        f"port = {port}",
        f'topic_root = "{root}"',
        f'username = "{username}"',
        f'password = "{password}"',
        "reconnect_min_s = 0.1",
        "reconnect_max_s = 0.5",
        "[batch]",
        "max_interval_s = 0.2",
        "max_readings = 50",
        "replay_batches_per_s = 50.0",
        "[buffer]",
        f"max_readings = {buffer_max_readings}",
    ]
    if modbus:
        lines += ["[[collectors]]", 'type = "modbus"']
        for dev_id, mport, kind in modbus:
            lines += [
                "[[collectors.devices]]",
                f'id = "{dev_id}"',
                'host = "127.0.0.1"',
                f"port = {mport}",
                f'kind = "{kind}"',
                f'profile = "{kind}"',
                f"poll_interval_s = {poll_s}",
                "timeout_s = 1.0",
            ]
    if modems:
        lines += ["[[collectors]]", 'type = "cellular"']
        for dev_id, mport in modems:
            lines += [
                "[[collectors.modems]]",
                f'id = "{dev_id}"',
                f'address = "tcp://127.0.0.1:{mport}"',
                "interval_s = 0.5",
                "uplink = true",
                "timeout_s = 1.0",
            ]
    return "\n".join(lines) + "\n" + extra


def stored_readings(db: Path) -> tuple[set[int], list[int]]:
    """Timestamps of every reading in an agent's buffer file, and the seqs of its batches."""
    con = sqlite3.connect(db)
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"chunks", "batches"} <= tables:  # the agent is still creating its schema
            return set(), []
        seqs = [seq for (seq,) in con.execute("SELECT seq FROM batches ORDER BY seq")]
        ts: set[int] = set()
        # A chunk is its readings' JSON joined by commas (batched or staged alike).
        for (body,) in con.execute("SELECT body FROM chunks"):
            ts.update(r.ts for r in msgspec.json.decode(b"[" + body + b"]", type=list[AnyReading]))
    finally:
        con.close()
    return ts, seqs
