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
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{topic_root.replace('/', '-')}")
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
