"""The foundation's promise: a contract batch crosses a real Mosquitto, and line protocol
written to a real InfluxDB comes back through InfluxQL."""

from __future__ import annotations

import json
import queue
import time
import urllib.parse
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import Batch, Cellular, Machine, decode_batch, encode, parse_topic, subscription, topic_for
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def _client(server: ServerProcess, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(server.host, server.port)
    client.loop_start()
    return client


def test_contract_batch_round_trip_through_mosquitto(
    mosquitto: ServerProcess, topic_root: str, unique: str
) -> None:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    sub = _client(mosquitto, f"sub-{unique}")
    sub.on_message = lambda _c, _u, msg: received.put(msg)
    sub.on_subscribe = lambda *_a: subscribed.put(True)
    sub.subscribe(subscription("telemetry", root=topic_root), qos=1)
    subscribed.get(timeout=5)

    now = int(time.time() * 1000)
    batch = Batch(
        v=1,
        gw="gw-01",
        seq=7,
        readings=[
            Cellular(
                ts=now, dev="modem-1", operator="Sao Bien", tech="NR", rsrp_dbm=-101.5, lat=20.85, lon=106.68
            ),
            Machine(ts=now, dev="cnc-3", state="fault", parts_total=1200, rejects_total=3),
        ],
    )
    pub = _client(mosquitto, f"pub-{unique}")
    info = pub.publish(topic_for("hp-deep-c", "gw-01", "telemetry", root=topic_root), encode(batch), qos=1)
    info.wait_for_publish(timeout=5)

    msg = received.get(timeout=5)
    topic = parse_topic(msg.topic, root=topic_root)
    decoded = decode_batch(bytes(msg.payload))
    assert (topic.park, topic.gateway, topic.channel) == ("hp-deep-c", "gw-01", "telemetry")
    assert decoded.gw == "gw-01" and decoded.seq == 7 and not decoded.rejected
    assert decoded.readings == batch.readings
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()


def _influx(
    server: ServerProcess, path: str, params: dict[str, str], body: bytes | None = None
) -> tuple[int, bytes]:
    url = f"http://{server.host}:{server.port}{path}?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def test_line_protocol_write_and_influxql_read(influxdb: ServerProcess, influx_db_name: str) -> None:
    status, _ = _influx(influxdb, "/query", {"q": f'CREATE DATABASE "{influx_db_name}"'})
    assert status == 200
    lines = (
        b"cellular,park=hp-deep-c,gw=gw-01,dev=modem-1,operator=Sao\\ Bien,tech=NR rsrp_dbm=-101.5,pci=17i 1700000000000\n"
        b"cellular,park=hp-deep-c,gw=gw-01,dev=modem-1,operator=Sao\\ Bien,tech=NR rsrp_dbm=-99.0,pci=17i 1700000001000\n"
    )
    status, _ = _influx(influxdb, "/write", {"db": influx_db_name, "precision": "ms"}, lines)
    assert status == 204
    status, body = _influx(
        influxdb,
        "/query",
        {
            "db": influx_db_name,
            "q": "SELECT count(rsrp_dbm), min(rsrp_dbm) FROM cellular WHERE operator = 'Sao Bien'",
        },
    )
    result = json.loads(body)["results"][0]
    assert "error" not in result
    assert result["series"][0]["values"][0][1:] == [2, -101.5]
