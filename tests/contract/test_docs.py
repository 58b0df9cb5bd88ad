"""The document and the generated schema match the models, and the document's examples work
when pasted: run through the real mosquitto_pub into a real Mosquitto, and accepted by the codec."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import decode_batch, decode_message, parse_topic
from contract.docgen import DOC_PATH, render_doc
from contract.jsonschema import SCHEMA_PATH, render
from contract.messages import Status
from tests.conftest import IN_CI
from tests.servers import ServerProcess


def test_checked_in_json_schema_matches_models() -> None:
    assert SCHEMA_PATH.read_text() == render(), "run: python -m contract.jsonschema"
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


def test_document_kind_tables_match_models() -> None:
    text = DOC_PATH.read_text()
    assert text == render_doc(text), "run: python -m contract.docgen"


def _examples() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC_PATH.read_text(), flags=re.S)
    return [b for b in blocks if b.startswith("mosquitto_pub")]


def test_document_has_examples() -> None:
    assert len(_examples()) >= 4


@pytest.mark.integration
def test_document_examples_publish_batches_the_contract_accepts(mosquitto_fresh: ServerProcess) -> None:
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
    sub.subscribe("parkwatch/v1/#", qos=1)
    ready.get(timeout=5)
    examples = _examples()
    for script in examples:
        pasted = script.replace("mosquitto_pub ", f"mosquitto_pub -p {mosquitto_fresh.port} ", 1)
        subprocess.run(["bash", "-c", pasted], check=True, timeout=20)
    messages = [got.get(timeout=5) for _ in examples]
    sub.loop_stop()
    sub.disconnect()
    batches = 0
    for msg in messages:
        topic = parse_topic(msg.topic)
        if topic.channel == "telemetry":
            out = decode_batch(bytes(msg.payload))
            assert out.rejected == [], out.rejected
            assert out.gw == topic.gateway and out.readings
            batches += 1
        else:
            assert decode_message(bytes(msg.payload), Status).gw == topic.gateway
    assert batches == len(examples) - 1
