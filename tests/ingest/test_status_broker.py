"""Status channel (birth and Last Will), /metrics, and a broker restart mid-stream."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import kind_of, topic_for
from tests.ingest.helpers import Publisher, batch_for, ingest_settings, running, wait_until
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration


async def test_status_rows_from_birth_and_last_will(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.duckdb"
    port = free_port()
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
        metrics_port=port,
    )
    status_topic = topic_for("hp-a", "gw-s", "status", root=topic_root)
    async with running(settings) as ing:
        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{unique}", protocol=mqtt.MQTTv5)
        gw.will_set(status_topic, json.dumps({"v": 1, "gw": "gw-s", "state": "offline"}), qos=1, retain=True)
        gw.connect(mosquitto.host, mosquitto.port, keepalive=5)
        gw.loop_start()
        online = {
            "v": 1,
            "gw": "gw-s",
            "state": "online",
            "agent_version": "0.1.0",
            "backlog": 3,
            "uplink": {"operator": "Viettel", "tech": "LTE", "rsrp_dbm": -95.0},
        }
        gw.publish(status_topic, json.dumps(online), qos=1, retain=True).wait_for_publish(10)
        await wait_until(lambda: ing.metrics.messages["status"] >= 1, what="birth status")
        gw.loop_stop()
        sock = gw.socket()
        assert sock is not None
        sock.close()  # vanish without DISCONNECT: the broker publishes the Last Will
        await wait_until(lambda: ing.metrics.messages["status"] >= 2, timeout_s=20, what="last will")
        await wait_until(lambda: ing.consumer.pending == 0, what="acked")
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        assert 'parkwatch_ingest_messages_total{channel="status"} 2' in text
        assert "parkwatch_ingest_spool_batches 0.0" in text
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT gw, park, state, backlog, uplink_operator, uplink_rsrp_dbm FROM gateway_status ORDER BY ts, state DESC"
        ).fetchall()
    assert rows[0] == ("gw-s", "hp-a", "online", 3, "Viettel", -95.0)
    assert rows[-1][:3] == ("gw-s", "hp-a", "offline")


async def test_broker_restart_mid_stream(
    mosquitto_fresh: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.duckdb"
    settings = ingest_settings(
        broker_port=mosquitto_fresh.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
    )
    batches = [batch_for("gw-r", seq, 30) for seq in range(40)]
    expected = Counter(kind_of(r) for b in batches for r in b.readings)
    async with running(settings) as ing:
        pub = Publisher(mosquitto_fresh.host, mosquitto_fresh.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches[:20])
        pub.close()
        await wait_until(lambda: ing.metrics.readings_stored >= 600, what="first half")
        await asyncio.to_thread(mosquitto_fresh.restart)
        await wait_until(
            lambda: ing.consumer.connects >= 2 and ing.consumer.subscribed.is_set(), what="reconnect"
        )
        pub = Publisher(mosquitto_fresh.host, mosquitto_fresh.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches[20:])
        pub.close()
        await wait_until(lambda: ing.metrics.readings_stored >= expected.total(), what="second half")
        ledger = ing.ledger.totals()
    assert (ledger["received"]["gw-r"], ledger["missing"]["gw-r"]) == (40, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert {k: con.execute(f"SELECT count(*) FROM {k}").fetchone()[0] for k in expected} == expected  # type: ignore[index]
