"""Interoperability with a third-party Sparkplug B implementation: Eclipse Tahu's JavaScript
client (npm ``sparkplug-client``, pinned by tests/ingest/tahu/package-lock.json) publishes
births, data and deaths to a real Mosquitto; the ingester stores them in a real DuckDB file and
answers an alias the births never declared with a rebirth request that the Tahu client receives.

The node modules are installed once with ``npm ci`` into a cache directory keyed by the lock
file (``PARKWATCH_TEST_CACHE``, default ``~/.cache/parkwatch-tests``). A failing ``npm ci`` (no
network, no npm) fails the test: interoperability is not optional.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.ingest.helpers import running, wait_until
from tests.ingest.sparkplug_helpers import sparkplug_settings
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

TAHU = Path(__file__).resolve().parent / "tahu"


def tahu_modules() -> Path:
    """A directory with ``node_modules`` of the locked Tahu client (``npm ci`` once)."""
    lock = (TAHU / "package-lock.json").read_bytes()
    base = Path(os.environ.get("PARKWATCH_TEST_CACHE") or Path.home() / ".cache" / "parkwatch-tests")
    target = base / f"tahu-{hashlib.sha256(lock).hexdigest()[:16]}"
    if (target / "node_modules" / "sparkplug-client" / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not installed: install Node.js 18+ with npm to run the Sparkplug interoperability test"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(TAHU / name, target / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"npm ci of the Tahu client failed in {target} (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return target


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


async def test_tahu_edge_node_births_data_rebirth_and_deaths(
    mosquitto: ServerProcess, unique: str, tmp_path: Path
) -> None:
    modules = tahu_modules()
    group, node, device = f"g-{unique}", "line1-plc", "m1"
    settings = sparkplug_settings(
        tmp=tmp_path,
        broker_port=mosquitto.port,
        root=f"r{unique}",
        client_id=f"ing-{unique}",
        group=group,
        groups=[group],
    )
    db = Path(settings.sink.path)  # type: ignore[union-attr]
    events: list[dict[str, Any]] = []
    async with running(settings) as ing:
        proc = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            str(TAHU / "edge_node.js"),
            f"mqtt://{mosquitto.host}:{mosquitto.port}",
            group,
            node,
            device,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(modules / "node_modules")},
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(60):
                while not events or events[-1]["event"] not in ("done", "error"):
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    events.append(json.loads(line))
                rc = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stderr = (await proc.stderr.read()).decode(errors="replace")
        assert [e["event"] for e in events] == ["sent", "ncmd", "done"], (events, stderr[-2000:])
        assert rc == 0, stderr[-2000:]
        await wait_until(
            lambda: (
                ing.metrics.sparkplug["NDEATH"] == 1 and ing.consumer.pending == 0 and ing.spool.depth == 0
            ),
            what="the NDEATH written and every message acknowledged",
        )
        sparkplug_events = dict(ing.metrics.sparkplug)
    # The rebirth request reached the Tahu client, decoded by Tahu's own payload library.
    assert events[1]["metrics"] == [{"name": "Node Control/Rebirth", "type": "Boolean", "value": True}]
    assert sparkplug_events["rebirth_requested"] == 1
    assert (sparkplug_events["NBIRTH"], sparkplug_events["DBIRTH"], sparkplug_events["DDEATH"]) == (2, 2, 1)
    machine = _rows(db, "SELECT dev, round(spindle_temp_c, 3), state, parts_total FROM machine ORDER BY ts")
    assert ("m1", 41.5, "running", 1200) in machine  # DBIRTH: Int16 415 x 0.1, String, UInt32
    assert ("m1", 43.3, None, 1250) in machine  # DDATA by alias
    assert machine[-1] == ("m1", None, None, 1300)  # DDATA after the rebirth
    generic = {
        (dev, name): (num, flag)
        for dev, name, num, flag in _rows(db, "SELECT dev, name, num, flag FROM generic")
    }
    assert generic[("m1", "offset")] == (-3.0, None)  # Int8 -3 through Tahu's encoder
    assert generic[("m1", "oil_level")] == (pytest.approx(80.5), None)
    assert generic[(node, "uptime")][0] in (5.0, 6.0)
    online = _rows(
        db, "SELECT flag FROM generic WHERE dev = 'm1' AND name = 'online' ORDER BY ts DESC LIMIT 1"
    )
    assert online == [(False,)]  # DDEATH
    assert _rows(db, "SELECT gw, state FROM gateway_status ORDER BY ts DESC LIMIT 1") == [
        ("sp-line1", "offline")
    ]
    reasons = [r for (r,) in _rows(db, "SELECT reason FROM dead_letter")]
    assert reasons == ["alias 999 is not in the birth certificate; a rebirth was requested"]
    (ledger,) = _rows(
        db, "SELECT received, missing FROM loss_ledger WHERE gw = 'sp-line1' ORDER BY ts DESC LIMIT 1"
    )
    # Numbered: NBIRTH DBIRTH NDATA DDATA NDATA, then after the rebirth NBIRTH DBIRTH DDATA DDEATH.
    assert ledger == (9, 0)
