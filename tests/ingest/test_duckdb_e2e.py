"""End to end into a real DuckDB file through a real Mosquitto."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from contract import kind_of, topic_for
from tests.ingest.helpers import Publisher, batch_for, ingest_settings, running, wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def _count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


async def test_n_published_n_stored(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.duckdb"
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
    )
    batches = [batch_for("gw-01", seq, 50) for seq in range(40)]
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches)
        pub.close()
        await wait_until(lambda: ing.metrics.readings_stored >= 2000, what="2000 readings")
    expected = Counter(kind_of(r) for b in batches for r in b.readings)
    assert {k: _count(db, k) for k in expected} == expected
    assert _count(db, "dead_letter") == 0


async def test_mixed_valid_and_invalid(
    mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.duckdb"
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink={"type": "duckdb", "path": str(db)},
        tmp=tmp_path,
    )
    now = int(time.time() * 1000)
    good = {"kind": "energy", "ts": now - 1000, "dev": "m1", "power_kw": 3.5}
    mixed = {
        "v": 1,
        "gw": "gw-m",
        "seq": 1,
        "readings": [
            good,
            {"kind": "cellular", "ts": now, "dev": "x", "operator": "A", "tech": "LTE", "rsrp_dbm": 12.0},
            {"kind": "energy", "ts": now + 3_600_000, "dev": "m2", "power_kw": 1.0},
            {"kind": "environment", "ts": now, "dev": "e1", "lat": 20.8, "temp_c": 30.0},
            {**good, "dev": "m3"},
        ],
    }
    payloads = {
        topic_for("hp-a", "gw-m", "telemetry", root=topic_root): json.dumps(mixed).encode(),
        topic_for("hp-a", "gw-n", "telemetry", root=topic_root): b"this is not json",
        topic_for("hp-a", "gw-v", "telemetry", root=topic_root): json.dumps(
            {**mixed, "v": 2, "gw": "gw-v"}
        ).encode(),
        f"{topic_root}/v1/bad park/gw-x/up/telemetry": json.dumps({**mixed, "gw": "gw-x"}).encode(),
    }
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        for topic, payload in payloads.items():
            pub.publish(topic, payload).wait_for_publish(10)
        pub.close()
        await wait_until(lambda: sum(ing.metrics.dead_letters.values()) >= 6, what="6 dead letters")
        await wait_until(lambda: ing.spool.depth == 0 and ing.consumer.pending == 0, what="all acked")
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT dev FROM energy ORDER BY dev").fetchall()
        kept_cell = con.execute("SELECT dev, rsrp_dbm FROM cellular").fetchall()
        dead = con.execute("SELECT gw, reason, raw FROM dead_letter ORDER BY gw, reason").fetchall()
    assert stored == [("m1",), ("m3",)]
    assert kept_cell == [("x", None)]  # the out-of-range RSRP was dropped, the reading kept
    reasons = [(gw, reason) for gw, reason, _ in dead]
    assert len(reasons) == 6
    assert reasons[0] == (
        "",
        "invalid park id 'bad park': use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit",
    )
    by_gw = {gw: [r for g, r in reasons if g == gw] for gw in ("gw-m", "gw-n", "gw-v")}
    assert "out_of_range: rsrp_dbm=12.0 > -31" in by_gw["gw-m"]
    assert any(r.startswith("in_future: ") for r in by_gw["gw-m"])
    assert "position: lat and lon must be given together" in by_gw["gw-m"]
    assert len(by_gw["gw-n"]) == 1 and "neither a JSON object" in by_gw["gw-n"][0]
    assert len(by_gw["gw-v"]) == 1 and "`$.v`" in by_gw["gw-v"][0]
    raws = {r for g, _, r in dead if g == "gw-m"}
    assert any('"rsrp_dbm": 12.0' in r for r in raws)
