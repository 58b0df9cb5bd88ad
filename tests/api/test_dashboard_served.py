"""``parkwatch api`` serves the built-in dashboard and sends ``/`` to it, over DuckDB and over
InfluxDB (real processes, real servers); ``[api] dashboard = false`` turns both off."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.api.data import dataset, load_influx
from tests.processes import Process, http_get, parkwatch
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def _serve_api(tmp_path: Path, backend: str, *, dashboard: bool = True) -> tuple[Process, str]:
    conf = tmp_path / "api.toml"
    conf.write_text(
        f'[api]\nregistry_path = "{tmp_path / "registry.sqlite"}"\n'
        f"dashboard = {str(dashboard).lower()}\n{backend}"
    )
    proc = Process(parkwatch("api", "--config", str(conf), "--port", "0"), workdir=tmp_path, name="api")
    found = proc.wait_for_line(r"listening on (http://\S+) \(([^)]*)\)")
    assert ("dashboard /" in found.group(2)) is dashboard, found.group(0)
    return proc, found.group(1)


def _assert_dashboard(base: str) -> None:
    status, _, head = http_get(f"{base}/", follow=False)
    assert status == 307 and head["location"] == "dashboard/", (status, head)
    status, page, _ = http_get(f"{base}/")
    assert status == 200 and "<title>parkwatch</title>" in page
    status, config, _ = http_get(f"{base}/dashboard/config.json")
    assert status == 200 and '"zoom"' in config


def test_api_on_duckdb_serves_the_dashboard(store: Path, tmp_path: Path) -> None:
    proc, base = _serve_api(tmp_path, f'[backend]\ntype = "duckdb"\npath = "{store}"\n')
    try:
        _assert_dashboard(base)
    finally:
        assert proc.stop() == 0, proc.text()[-2000:]


def test_api_on_influxdb_serves_the_dashboard(influxdb: ServerProcess, tmp_path: Path) -> None:
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_dash_{uuid.uuid4().hex[:8]}"
    load_influx(url, db, dataset())
    proc, base = _serve_api(tmp_path, f'[backend]\ntype = "influxdb"\nurl = "{url}"\ndatabase = "{db}"\n')
    try:
        _assert_dashboard(base)
    finally:
        assert proc.stop() == 0, proc.text()[-2000:]


def test_dashboard_off_leaves_root_and_dashboard_unserved(store: Path, tmp_path: Path) -> None:
    proc, base = _serve_api(tmp_path, f'[backend]\ntype = "duckdb"\npath = "{store}"\n', dashboard=False)
    try:
        assert http_get(f"{base}/", follow=False)[0] == 404
        assert http_get(f"{base}/dashboard/")[0] == 404
        assert http_get(f"{base}/healthz")[0] == 200
    finally:
        assert proc.stop() == 0, proc.text()[-2000:]
