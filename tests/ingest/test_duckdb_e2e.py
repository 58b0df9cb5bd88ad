"""End to end into a real DuckDB file through a real Mosquitto."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from contract import kind_of
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
