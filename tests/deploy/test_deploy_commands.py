"""docs/deploy.md's deployments without Docker, run from the document's own commands.

- One machine on DuckDB: ``parkwatch serve`` (embedded broker) → an admin key → a gateway
  registered through the API → a real edge agent (config by ``parkwatch edge init``) publishes →
  the gateway is online, the dashboard page and the dead-zone API answer.
- Several processes on one host: the API on InfluxDB, two ingesters on one shared subscription,
  each with its own broker account, Mosquitto with the password file and ACL the API generated,
  a real edge agent with the configuration of its provisioning answer → the API reads its data
  back from InfluxDB.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.deploy.doc_commands import REPO, Background, DocShell, doc_blocks
from tests.processes import http_get, wait_until
from tests.servers import free_port, tcp_open

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "deploy.md"
GW = "gw-dv-01"


def _wait_line(bg: Background, text: str, timeout_s: float = 90.0) -> None:
    def printed() -> bool:
        assert bg.proc.poll() is None, f"exited with {bg.proc.returncode}: {bg.text()[-3000:]}"
        return text in bg.text()

    wait_until(printed, timeout_s, f"{text!r} from {bg.block.text.strip()[:60]}")


def _ports(extra: dict[int, int]) -> dict[int, int]:
    return {8080: free_port(), 1883: free_port(), 9108: free_port(), 9109: free_port(), **extra}


@pytest.fixture
def shell(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DocShell]:
    """The reader's shell; its background processes must stop cleanly, without a traceback."""
    extra = {8086: request.getfixturevalue("influxdb_fresh").port} if "influx" in request.node.name else {}
    sh = DocShell(root=tmp_path / "root", ports=_ports(extra))
    try:
        yield sh
    finally:
        codes = sh.stop_all()
    logs = "\n".join(bg.text()[-2000:] for bg in sh.background)
    assert all(code == 0 for code in codes.values()), (codes, logs)
    assert "Traceback" not in logs, logs


def _gateway_online(base: str, key: str) -> bool:
    status, body, _ = http_get(f"{base}/api/v1/gateways", key=key)
    assert status == 200, body
    return any(g["gw"] == GW and g["online"] for g in json.loads(body)["items"])


def _dashboard_and_dead_zones(base: str, key: str) -> None:
    status, page, _ = http_get(f"{base}/")
    assert status == 200 and "<title>parkwatch</title>" in page
    status, body, _ = http_get(f"{base}/api/v1/coverage/dead-zones", key=key)
    assert status == 200 and json.loads(body)["type"] == "FeatureCollection", body


def test_single_machine_on_duckdb_as_documented(shell: DocShell) -> None:
    blocks = doc_blocks(DOC, "serve")
    assert [b.background for b in blocks] == [False, True, False, False, True, False]

    def started(bg: Background) -> None:
        if "parkwatch serve" in bg.block.text:
            _wait_line(bg, "API and dashboard on")

    for block in blocks:
        shell.run(block, started)
    key = shell.env["KEY"]
    base = f"http://127.0.0.1:{shell.ports[8080]}"
    wait_until(lambda: _gateway_online(base, key), 90, f"{GW} online")
    _dashboard_and_dead_zones(base, key)
    assert (shell.root / "var/lib/parkwatch/parkwatch.duckdb").is_file()
    edge = tomllib.loads((shell.root / "var/lib/parkwatch/edge.toml").read_text())
    assert edge["broker"]["username"] == f"dinh-vu/{GW}" and len(edge["broker"]["password"]) >= 16
    assert "FeatureCollection" in shell.outputs[-1]


def test_several_processes_on_influxdb_as_documented(shell: DocShell) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        if IN_CI:
            pytest.fail("mosquitto missing under CI=true")
        pytest.skip("mosquitto not installed: apt-get install mosquitto")
    blocks = doc_blocks(DOC, "influxdb")
    assert [b.background for b in blocks] == [False, True, False, True, True, True, False, True, False]
    mqtt_port = shell.ports[1883]

    def started(bg: Background) -> None:
        text = bg.block.text
        if "parkwatch api" in text:
            _wait_line(bg, "listening on")
        elif text.startswith("mosquitto"):
            wait_until(lambda: bg.proc.poll() is None and tcp_open("127.0.0.1", mqtt_port), 30, "mosquitto")
        elif "parkwatch ingest" in text:
            _wait_line(bg, "subscribed (SUBACK)")

    for block in blocks:
        shell.run(block, started)
    key = shell.env["KEY"]
    base = f"http://127.0.0.1:{shell.ports[8080]}"
    wait_until(lambda: _gateway_online(base, key), 90, f"{GW} online (read back from InfluxDB)")
    _dashboard_and_dead_zones(base, key)
    acl = (shell.root / "etc/parkwatch/mosquitto/acl").read_text()
    assert "user parkwatch-ingest-1" in acl and "user parkwatch-ingest-2" in acl
    for port in (shell.ports[9108], shell.ports[9109]):
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200


def test_readme_serve_quickstart(shell: DocShell) -> None:
    """The README's two commands, from a checkout (its config copied, with free ports)."""
    checkout = shell.root / "checkout"
    (checkout / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "parkwatch.toml", checkout / "config")
    shell.adapt_files()
    shell.cwd = checkout
    blocks = doc_blocks(REPO / "README.md", "readme-serve")
    assert [b.background for b in blocks] == [True, False]
    shell.run(blocks[0], lambda bg: _wait_line(bg, "API and dashboard on"))
    shell.run(blocks[1])
    key = shell.outputs[-1].strip()
    base = f"http://127.0.0.1:{shell.ports[8080]}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,200}", key), key
    wait_until(lambda: http_get(f"{base}/api/v1/gateways", key=key)[0] == 200, 10, "the new key accepted")
    status, page, _ = http_get(f"{base}/")
    assert status == 200 and "<title>parkwatch</title>" in page
    assert (checkout / "parkwatch.duckdb").is_file() and (checkout / "parkwatch-registry.sqlite").is_file()
