"""``parkwatch edge doctor`` through the console script against a real Mosquitto: it never
publishes on the gateway's status topic, and a broadband target that does not answer fails."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.edge_agent.helpers import agent_config
from tests.servers import ServerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)


def _row(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(name))


def _pump_until(client: mqtt.Client, done: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    assert done(), "timed out"


def test_doctor_publishes_on_its_probe_topic_only_and_fails_a_silent_probe_target(
    mosquitto: ServerProcess, topic_root: str, tmp_path: Path
) -> None:
    closed = free_port()
    targets = (
        '[[collectors]]\ntype = "broadband"\ntimeout_s = 0.5\n'
        f'[[collectors.targets]]\nname = "isp-a"\nhost = "127.0.0.1"\nport = {closed}\npings = 2\n'
    )
    config = tmp_path / "edge.toml"
    config.write_text(agent_config(tmp_path, port=mosquitto.port, root=topic_root, extra=targets))

    seen: list[str] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{topic_root.replace('/', '-')}")
    subscribed: list[Any] = []
    watcher.on_subscribe = lambda c, u, mid, rcs, props: subscribed.append(rcs)
    watcher.on_message = lambda c, u, msg: seen.append(msg.topic)
    watcher.connect("127.0.0.1", mosquitto.port)
    try:
        watcher.subscribe(f"{topic_root}/#", qos=1)
        _pump_until(watcher, lambda: subscribed)

        done = _console("edge", "doctor", "--config", str(config))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "PASS" in _row(done.stdout, "acl publish") and "/up/doctor" in _row(done.stdout, "acl publish")
        probe = _row(done.stdout, "device probe")
        assert "FAIL" in probe and "isp-a" in probe and "did not answer" in probe, done.stdout
        assert f"127.0.0.1:{closed}" in done.stdout

        _pump_until(watcher, lambda: any(t.endswith("/up/doctor") for t in seen))
        assert not [t for t in seen if t.endswith("/up/status")], seen
    finally:
        watcher.disconnect()


async def test_doctor_says_the_broker_speaks_only_mqtt_311_and_names_the_config_file(tmp_path: Path) -> None:
    import asyncio
    import os

    from parkwatch.embedded_broker import EmbeddedBroker

    port = free_port()
    broker = EmbeddedBroker(port=port)
    await broker.start()
    config = tmp_path / "edge.toml"
    config.write_text(
        f'[agent]\npark = "p1"\ngateway = "gw-1"\nstate_dir = "{tmp_path}/state"\n[broker]\nport = {port}\n'
    )
    exe = shutil.which("parkwatch")
    assert exe is not None
    try:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "edge",
            "doctor",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PARKWATCH_CONFIG": str(config)},
        )
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await broker.aclose()
    out = out_b.decode()
    assert proc.returncode == 1, out + err_b.decode()
    assert _row(out, "config").startswith(f"config       PASS  {config}:"), out
    creds = _row(out, "credentials")
    assert "FAIL" in creds and "answers MQTT 3.1.1 but not MQTT 5" in creds
    assert 'set [broker] protocol = "3.1.1"' in out


def test_config_errors_in_plain_words(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("[broker]\nport = 1883\n")
    res = _console("edge", "doctor", "--config", str(empty))
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr
    assert f"{empty}: required key agent is missing" in _row(res.stdout, "config"), res.stdout
    typo = tmp_path / "typo.toml"
    typo.write_text('[agent]\npark = "p1"\ngateway = "gw-1"\n[[collectors]]\ntype = "sytem"\n')
    res = _console("edge", "doctor", "--config", str(typo))
    line = _row(res.stdout, "config")
    assert (
        "collectors[0].type: 'sytem' is not a known type; valid types: broadband, cellular, modbus, opcua, system, wifi"
        in line
    )
