"""``parkwatch serve`` on a fresh install, provisioned in any order: it starts before its broker
exists, creates the store and the registry, takes keys and gateways at once, writes the broker
files with its own ingester account in them, and the ingester connects when Mosquitto starts
with those files (real Mosquitto, real processes)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.broker_helpers import auth_lines
from tests.processes import Process, http_get, parkwatch, wait_until
from tests.servers import free_port, mosquitto_server

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "parkwatch.toml"
INGEST_PASSWORD = "ingest-password-0123456789"


def _post(url: str, key: str, body: dict[str, str] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


def test_serve_first_then_keys_gateways_broker_files_and_broker(tmp_path: Path) -> None:
    api_port, mqtt_port = free_port(), free_port()
    env = {
        "PARKWATCH_API__PORT": str(api_port),
        "PARKWATCH_BROKER__PORT": str(mqtt_port),
        "PARKWATCH_BROKER__PASSWORD": INGEST_PASSWORD,
        "PARKWATCH_BROKER__RECONNECT_MAX_S": "1.0",
        "PARKWATCH_INGEST__METRICS_PORT": str(free_port()),
        "PARKWATCH_PROVISIONING__BROKER_PORT": str(mqtt_port),
    }
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}, **env}
    serve = Process(parkwatch("serve", "--config", str(SAMPLE)), workdir=tmp_path, name="serve", env=full_env)
    try:
        serve.wait_for_line("API and dashboard on")
        # Nothing existed before serve: it created the store and the registry.
        assert (tmp_path / "parkwatch.duckdb").is_file() and (
            tmp_path / "parkwatch-registry.sqlite"
        ).is_file()
        key = Process(
            parkwatch("serve", "--config", str(SAMPLE), "key-create", "--name", "ops", "--role", "admin"),
            workdir=tmp_path,
            name="key",
            env=full_env,
        )
        assert key.proc.wait(60) == 0, key.text()
        admin = key.text().splitlines()[0].strip()
        base = f"http://127.0.0.1:{api_port}"
        gw = wait_until(
            lambda: _post(f"{base}/api/v1/gateways", admin, {"park": "p1", "gw": "gw-1"}), 10, "a gateway"
        )
        assert gw["mqtt"]["username"] == "p1/gw-1"
        auth = tmp_path / "broker-auth"
        files = Process(
            parkwatch("serve", "--config", str(SAMPLE), "mosquitto-files", "--out-dir", str(auth)),
            workdir=tmp_path,
            name="files",
            env=full_env,
        )
        assert files.proc.wait(60) == 0, files.text()
        passwd = (auth / "passwd").read_text()
        assert passwd.startswith("p1/gw-1:") or "\np1/gw-1:" in passwd
        assert "parkwatch-ingest:" in passwd, "serve registers its own ingester account"
        assert "user parkwatch-ingest\n" in (auth / "acl").read_text()
        assert "subscribed (SUBACK)" not in serve.text()
        broker = mosquitto_server(tmp_path / "mosquitto", port=mqtt_port, extra_conf=auth_lines(auth))
        broker.start()
        try:
            serve.wait_for_line(r"subscribed \(SUBACK\)", timeout_s=60)
            status, page, _ = http_get(f"{base}/")
            assert status == 200 and "<title>parkwatch</title>" in page
        finally:
            assert serve.stop() == 0, serve.text()[-3000:]
            broker.stop()
    finally:
        serve.stop()
    assert "Traceback" not in serve.text(), serve.text()[-3000:]
    assert "stopped: 0 readings stored" in serve.text()


def test_a_second_serve_on_the_same_store_says_what_to_do(tmp_path: Path) -> None:
    def env() -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")},
            "PARKWATCH_EMBEDDED_BROKER__ENABLED": "true",
            "PARKWATCH_EMBEDDED_BROKER__PORT": str(free_port()),
            "PARKWATCH_INGEST__METRICS_PORT": "0",
        }

    argv = parkwatch("serve", "--config", str(SAMPLE), "--port", "0")
    first = Process(argv, workdir=tmp_path, name="first", env=env())
    try:
        first.wait_for_line("API and dashboard on")
        second = Process(argv, workdir=tmp_path, name="second", env=env())
        assert second.proc.wait(60) == 2, second.text()
        [line] = second.text().strip().splitlines()
        assert line.startswith("parkwatch serve: store.path: cannot open the DuckDB store parkwatch.duckdb")
        assert "stop the other parkwatch serve, ingest or api that holds it" in line
    finally:
        assert first.stop() == 0, first.text()[-3000:]
