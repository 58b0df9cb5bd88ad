"""docs/deploy.md's hand-made test message: it publishes as a registered test gateway, never as the
gateway that runs a real agent, and works when pasted into a real mosquitto_pub."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import decode_batch, parse_topic
from tests.conftest import IN_CI
from tests.servers import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)


def _registered() -> list[str]:
    return [m for b in _blocks() for m in re.findall(r'"gw": "([^"]+)"', b)]


def _test_publish() -> str:
    found = [b for b in _blocks() if b.startswith("mosquitto_pub")]
    assert len(found) == 1, found
    return found[0]


def test_the_test_message_uses_its_own_registered_gateway() -> None:
    script = _test_publish()
    topic = re.search(r"-t (\S+)", script).group(1)  # type: ignore[union-attr]
    gw = parse_topic(topic).gateway
    registered = _registered()
    assert registered[0] != gw, "the first gateway registered is the one a real agent runs as"
    assert gw in registered[1:], f"{gw} is never registered in the doc"
    assert f"-u dinh-vu/{gw} " in script and f'"gw":"{gw}"' in script


@pytest.mark.integration
def test_the_test_message_publishes_a_batch_the_contract_accepts(mosquitto_fresh: ServerProcess) -> None:
    if shutil.which("mosquitto_pub") is None:
        if IN_CI:
            pytest.fail("mosquitto_pub missing under CI=true")
        pytest.skip("mosquitto_pub not installed: apt-get install mosquitto-clients")
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    ready: queue.Queue[bool] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, m: got.put(m)
    sub.on_subscribe = lambda *_a: ready.put(True)
    sub.connect(mosquitto_fresh.host, mosquitto_fresh.port)
    sub.loop_start()
    try:
        sub.subscribe("parkwatch/v1/#", qos=1)
        ready.get(timeout=5)
        pasted = _test_publish().replace("<MQTT_PUBLIC_HOST>", mosquitto_fresh.host)
        pasted = pasted.replace("mosquitto_pub ", f"mosquitto_pub -p {mosquitto_fresh.port} ", 1)
        subprocess.run(["bash", "-c", pasted], check=True, timeout=20)
        msg = got.get(timeout=5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    out = decode_batch(bytes(msg.payload))
    assert out.rejected == [] and out.readings and out.gw == parse_topic(msg.topic).gateway == "gw-dv-test"
