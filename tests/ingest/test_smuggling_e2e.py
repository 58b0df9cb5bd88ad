"""Ids and keys that end in a newline cannot smuggle points into InfluxDB (real Mosquitto, real
InfluxDB 1.x, the real ingester).

Before ids and keys were matched whole, a tag key ``"site\\n"`` with the value ``smuggled_meas``
passed the contract (``$`` matches before a final newline) and wrote a second line,
``=smuggled_meas,...``, a point in a measurement of the sender's choosing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from contract import topic_for
from storage.schema import DEAD_LETTER, LOSS_LEDGER
from tests.ingest.helpers import Publisher, influx_rows, ingest_settings, running, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


async def _measurements(port: int, db: str) -> set[str]:
    return {r["name"] for r in await influx_rows(port, db, "SHOW MEASUREMENTS")}


def _generic(ts: int, dev: str = "probe-1", **extra: Any) -> dict[str, Any]:
    return {"kind": "generic", "ts": ts, "dev": dev, "f": {"level_m": 2.5}, **extra}


async def test_newline_ids_and_keys_are_dead_lettered_and_write_no_point(
    mosquitto: ServerProcess,
    influxdb: ServerProcess,
    topic_root: str,
    unique: str,
    influx_db_name: str,
    tmp_path: Path,
) -> None:
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "influxdb", "url": f"http://127.0.0.1:{influxdb.port}", "database": influx_db_name},
        tmp=tmp_path,
    )
    now = int(time.time() * 1000) - 30_000
    baseline = {"v": 1, "gw": "gw-s", "seq": 1, "readings": [_generic(now)]}
    hostile = [
        _generic(now + 1, tags={"site\n": "smuggled_meas"}),
        _generic(now + 2, tags={"site\r": "smuggled_cr"}),
        _generic(now + 3, dev="dev-nl\n"),
        {"kind": "generic", "ts": now + 4, "dev": "probe-1", "f": {"x\n": 1.0}},
        _generic(now + 5, tags={"site\u2028": "smuggled_ls"}),
    ]
    smuggling = {"v": 1, "gw": "gw-s", "seq": 2, "readings": [*hostile, _generic(now + 6)]}
    topic = topic_for("hp-a", "gw-s", "telemetry", root=topic_root)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish(topic, json.dumps(baseline).encode()).wait_for_publish(timeout=30)
        await wait_until(lambda: ing.metrics.readings_stored >= 1, what="the baseline reading stored")
        before = await _measurements(influxdb.port, influx_db_name)
        pub.publish(topic, json.dumps(smuggling).encode()).wait_for_publish(timeout=30)
        pub.close()
        await wait_until(
            lambda: ing.metrics.readings_stored >= 2, what="the valid reading beside them stored"
        )
        await wait_until(
            lambda: sum(ing.metrics.dead_letters.values()) >= len(hostile),
            what="the hostile readings dead-lettered",
        )
    after = await _measurements(influxdb.port, influx_db_name)
    assert before >= {"generic", LOSS_LEDGER}
    # The dead letters add their own measurement; nothing else appears.
    assert after == before | {DEAD_LETTER}, after - before
    assert not any("smuggled" in m for m in after)
    dead = await influx_rows(influxdb.port, influx_db_name, f'SELECT reason, raw FROM "{DEAD_LETTER}"')
    assert len(dead) == len(hostile)
    assert sorted(json.loads(r["raw"])["ts"] for r in dead) == [r["ts"] for r in hostile]
    assert all("regex" in r["reason"] or "pattern" in r["reason"] for r in dead), [r["reason"] for r in dead]
    rows = await influx_rows(influxdb.port, influx_db_name, "SELECT num, dev FROM generic")
    assert len(rows) == 2
    assert {r["dev"] for r in rows} == {"probe-1"}
