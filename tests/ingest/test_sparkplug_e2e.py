"""Sparkplug B end to end: a real Mosquitto, the ingester, a real DuckDB file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.sparkplug.payload import REBIRTH_METRIC
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload
from tests.ingest.helpers import Publisher, running, start_ingest_process, wait_until
from tests.ingest.sparkplug_helpers import NODE, dbirth, metric, nbirth, payload, sparkplug_settings
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


class Watcher:
    """Subscribes (QoS 1) and keeps every message; ``subscribed`` is set on the SUBACK."""

    def __init__(self, host: str, port: int, client_id: str, filters: list[str]) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._lock = threading.Condition(threading.RLock())
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._lock.notify_all()

    def wait_for(self, topic: str, count: int, timeout_s: float = 30.0) -> list[bytes]:
        """Wait (on message arrival) until ``topic`` has ``count`` messages; return them."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.on(topic)) >= count, timeout_s)
            return self.on(topic)

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _is_rebirth(body: bytes) -> bool:
    p = Payload()
    p.ParseFromString(body)
    return any(m.name == REBIRTH_METRIC and m.boolean_value for m in p.metrics)


async def test_births_data_deaths_rebirth_and_state_through_mosquitto_into_duckdb(
    mosquitto: ServerProcess, unique: str, tmp_path: Path
) -> None:
    group = f"g-{unique}"
    host_id = f"pw-{unique}"
    settings = sparkplug_settings(
        tmp=tmp_path,
        broker_port=mosquitto.port,
        root=f"r{unique}",
        client_id=f"ing-{unique}",
        group=group,
        groups=[group],
        host_id=host_id,
    )
    db = Path(settings.sink.path)  # type: ignore[union-attr]
    state = f"spBv1.0/STATE/{host_id}"
    ncmd = f"spBv1.0/{group}/NCMD/{NODE}"
    watcher = Watcher(mosquitto.host, mosquitto.port, f"w-{unique}", [state, ncmd])
    pub = Publisher(mosquitto.host, mosquitto.port, f"node-{unique}", protocol=mqtt.MQTTv311)
    base = f"spBv1.0/{group}"
    try:
        assert watcher.subscribed.wait(10)
        async with running(settings) as ing:
            await wait_until(lambda: watcher.on(state), what="STATE online")
            online = json.loads(watcher.on(state)[0])
            assert online["online"] is True
            # Data half a second older than the births: one device's readings at one instant share
            # a store identity, and two messages in the same millisecond would overwrite each other.
            now = int(time.time() * 1000)
            sent = [
                pub.publish(f"{base}/NBIRTH/{NODE}", nbirth(bd_seq=4)),
                pub.publish(f"{base}/DBIRTH/{NODE}/m1", dbirth(1)),
                pub.publish(
                    f"{base}/DDATA/{NODE}/m1",
                    payload(
                        [
                            metric("", 433, DataType.Int16, alias=10, ts_ms=now - 500),
                            metric("", 1250, DataType.UInt32, alias=12, ts_ms=now - 500),
                        ],
                        seq=2,
                    ),
                ),
                pub.publish(f"{base}/NDATA/{NODE}", payload([metric("", 5.0, alias=77)], seq=3)),
                pub.publish(f"{base}/NDATA/{NODE}", b"\x12\x05not protobuf at all"),
                pub.publish(f"{base}/DDEATH/{NODE}/m1", payload([], seq=4, ts_ms=now + 1_000)),
                pub.publish(
                    f"{base}/NDEATH/{NODE}", payload([metric("bdSeq", 4, DataType.UInt64)], seq=None)
                ),
            ]
            for info in sent:
                info.wait_for_publish(10)
            await wait_until(lambda: watcher.on(ncmd), what="rebirth NCMD")
            await wait_until(
                lambda: (
                    ing.metrics.sparkplug["NDEATH"] == 1
                    and ing.consumer.pending == 0
                    and ing.spool.depth == 0
                ),
                what="every message written and acknowledged",
            )
        assert _is_rebirth(watcher.on(ncmd)[0])
        await wait_until(lambda: len(watcher.on(state)) >= 2, what="STATE offline on shutdown")
        offline = json.loads(watcher.on(state)[-1])
        assert offline == {"online": False, "timestamp": online["timestamp"]}
    finally:
        pub.close()
        watcher.close()
    machine = _rows(
        db, "SELECT dev, round(spindle_temp_c, 3), state, parts_total FROM machine ORDER BY parts_total"
    )
    assert machine == [("m1", 41.5, "running", 1200), ("m1", 43.3, None, 1250)]
    assert _rows(db, "SELECT park, gw, dev, power_kw FROM energy") == [("hp-a", "sp-line1", "m1", 7.5)]
    generic = _rows(db, "SELECT dev, name, num, flag FROM generic ORDER BY ts, name")
    assert ("m1", "oil_level", 80.5, None) in generic and ("line1-plc", "uptime", 12.0, None) in generic
    assert [g for g in generic if g[1] == "online"] == [
        ("m1", "online", None, True),
        ("m1", "online", None, False),
    ]
    status = _rows(db, "SELECT gw, state FROM gateway_status ORDER BY ts")
    assert status == [("sp-line1", "online"), ("sp-line1", "offline")]
    reasons = sorted(r for (r,) in _rows(db, "SELECT reason FROM dead_letter"))
    assert reasons[0] == "alias 77 is not in the birth certificate; a rebirth was requested"
    assert reasons[1].startswith("malformed Sparkplug B protobuf")
    ledger = _rows(
        db, "SELECT received, missing FROM loss_ledger WHERE gw = 'sp-line1' ORDER BY ts DESC LIMIT 1"
    )
    # seq 0-4: NBIRTH, DBIRTH, DDATA, NDATA, DDEATH (the malformed message has none)
    assert ledger == [(5, 0)]


def test_a_killed_ingester_goes_offline_through_its_will(
    mosquitto: ServerProcess, unique: str, tmp_path: Path
) -> None:
    host_id = f"pw-{unique}"
    state = f"spBv1.0/STATE/{host_id}"
    config = tmp_path / "ingest.toml"
    config.write_text(
        f"""
[broker]
host = "127.0.0.1"
port = {mosquitto.port}
topic_root = "r{unique}"
[sink]
type = "duckdb"
path = "{tmp_path / "store.duckdb"}"
[ingest]
client_id = "ing-{unique}"
spool_dir = "{tmp_path / "spool"}"
metrics_enabled = false
[sparkplug]
enabled = true
groups = ["g-{unique}"]
host_id = "{host_id}"
"""
    )
    watcher = Watcher(mosquitto.host, mosquitto.port, f"w-{unique}", [state])
    proc = start_ingest_process(config, tmp_path / "ingest.log")
    try:
        assert watcher.subscribed.wait(10)
        births = watcher.wait_for(state, 1)
        assert births, (tmp_path / "ingest.log").read_text()[-2000:]
        online = json.loads(births[0])
        assert online["online"] is True
        proc.kill()
        proc.wait(10)
        states = watcher.wait_for(state, 2)
        # The broker published the will: offline, with the timestamp of the birth it belongs to.
        assert len(states) == 2 and json.loads(states[1]) == {
            "online": False,
            "timestamp": online["timestamp"],
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        watcher.close()
    # Retained: a host application that connects later learns the state too.
    late = Watcher(mosquitto.host, mosquitto.port, f"late-{unique}", [state])
    try:
        (retained,) = late.wait_for(state, 1, timeout_s=10)
        assert json.loads(retained)["online"] is False
    finally:
        late.close()
