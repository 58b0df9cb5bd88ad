"""The embedded default: the in-process amqtt broker (MQTT 3.1.1) feeding a DuckDB file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import pytest

from parkwatch.embedded_broker import EmbeddedBroker
from tests.ingest.helpers import Publisher, batch_for, ingest_settings, running, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.integration


async def test_mqtt_311_through_the_embedded_broker(unique: str, tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port)
    await broker.start()
    db = tmp_path / "store.duckdb"
    root = f"t{unique}/parkwatch"
    settings = ingest_settings(
        broker_port=port,
        root=root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
        protocol="3.1.1",
    )
    batches = [batch_for("gw-e", seq, 10) for seq in range(20)]
    try:
        async with running(settings) as ing:
            pub = Publisher("127.0.0.1", port, f"pub-{unique}", protocol=mqtt.MQTTv311)
            await asyncio.to_thread(pub.publish_batches, root, "hp-a", batches)
            pub.close()
            await wait_until(lambda: ing.metrics.readings_stored >= 200, what="200 readings")
            await wait_until(lambda: ing.consumer.pending == 0, what="all acked")
    finally:
        await broker.aclose()
    with duckdb.connect(str(db), read_only=True) as con:
        total = sum(
            con.execute(f"SELECT count(*) FROM {k}").fetchone()[0]  # type: ignore[index]
            for k in ("cellular", "machine", "energy", "generic")
        )
    assert total == 200


def test_a_delivery_amqtt_gave_up_on_logs_no_traceback() -> None:
    """amqtt's broadcast task logs its PUBACK timeout with a traceback (and warns once itself)."""
    import logging

    from parkwatch.embedded_broker import _SilentClientFilter

    def record(exc: BaseException) -> logging.LogRecord:
        info = (type(exc), exc, None)
        return logging.LogRecord("amqtt.broker", logging.ERROR, __file__, 1, "Task failed", (), info)

    keep = _SilentClientFilter()
    assert keep.filter(record(TimeoutError("Timeout waiting for PUBACK for packet ID 7"))) is False
    assert keep.filter(record(TimeoutError("something else"))) is True
    assert keep.filter(record(ValueError("Timeout waiting for PUBACK"))) is True
