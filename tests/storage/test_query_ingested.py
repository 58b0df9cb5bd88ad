"""The read side over data written by the ingester's own write path (DuckDB store and line protocol).

Contract readings go through ``ingest.rows`` into a real DuckDB file and through ``ingest.points``
into a real InfluxDB; both query backends must read back the same figures.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract import Cellular, Machine
from contract.messages import Status, Uplink
from contract.readings import AnyReading
from ingest.enrich import CellLocator
from ingest.model import LedgerRow, Part, StatusRow, WriteBatch
from ingest.points import encode_batch
from ingest.rows import batch_tables
from storage.duckdb_store import DuckStore
from storage.query import Scope
from storage.query_duckdb import DuckDBQuery
from storage.query_influx import InfluxQuery
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
SCOPE = Scope(parks=None, start=T0, end=T0 + timedelta(days=1))


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN (not measured) as None, so that rows compare equal."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]


def _batch() -> WriteBatch:
    rng = np.random.default_rng(5)
    readings: list[AnyReading] = [
        Cellular(
            ts=T0_MS + 1000 * k,
            dev=f"probe-{k % 3}",
            operator="Sao Bien" if k % 2 else "Hai Dang",
            tech="LTE",
            rsrp_dbm=float(round(-95 + rng.normal(0, 8))),
            sinr_db=float(round(rng.normal(8, 5), 1)),
            rsrq_db=-11.0,
            lat=20.85 + rng.uniform(-0.002, 0.002),
            lon=106.68 + rng.uniform(-0.002, 0.002),
        )
        for k in range(400)
    ]
    readings += [
        Machine(
            ts=T0_MS + 10_000 * k, dev="cnc-1", state="running" if k < 30 else "idle", parts_total=100 + k
        )
        for k in range(60)
    ]
    part = Part(park="hp", gw="gw-1", readings=readings, h3=CellLocator(10).cells("gw-1", readings))
    status = StatusRow(
        ts_ms=T0_MS + 600_000,
        park="hp",
        gw="gw-1",
        status=Status(
            v=1,
            gw="gw-1",
            state="online",
            agent_version="1.2.3",
            config_hash="cafe",
            backlog=4,
            uplink=Uplink(operator="Sao Bien", tech="LTE", rsrp_dbm=-97.0),
        ),
    )
    ledger = LedgerRow(
        ts_ms=T0_MS + 700_000, park="hp", gw="gw-1", received=50, missing=1, duplicated=2, late=0, last_seq=52
    )
    return WriteBatch(parts=[part], statuses=[status], ledger=[ledger])


def test_both_backends_read_what_the_ingester_wrote(tmp_path: Path, influxdb: ServerProcess) -> None:
    batch = _batch()
    store = DuckStore(str(tmp_path / "ingested.duckdb"))
    store.append(batch_tables(batch))
    store.close()
    url = f"http://{influxdb.host}:{influxdb.port}"
    db = f"pw_ing_{uuid.uuid4().hex[:8]}"
    urllib.request.urlopen(
        urllib.request.Request(
            f"{url}/query", data=urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode()
        ),
        timeout=10,
    ).read()
    encoded = encode_batch(batch, src="test", now_ns=T0_MS * 1_000_000)
    assert not encoded.rejected
    body = ("\n".join(encoded.lines) + "\n").encode()
    with urllib.request.urlopen(
        urllib.request.Request(f"{url}/write?db={db}", data=body, method="POST"), timeout=30
    ) as resp:
        assert resp.status == 204

    duck = DuckDBQuery(path=tmp_path / "ingested.duckdb")
    influx = InfluxQuery(url=url, database=db)
    try:
        a = _clean(duck.cell_stats(SCOPE, resolution=10).rows())
        b = _clean(influx.cell_stats(SCOPE, resolution=10).rows())
        assert a == b and sum(r["samples"] for r in a) == 400
        assert {r["operator"] for r in a} == {"Sao Bien", "Hai Dang"}
        ma = _clean(duck.machine_buckets(SCOPE, bucket_s=60).rows())
        mb = _clean(influx.machine_buckets(SCOPE, bucket_s=60).rows())
        assert ma == mb and [r["state"] for r in ma] == ["running"] * 5 + ["idle"] * 5
        sa, sb = (
            _clean(duck.status(SCOPE, latest=True).rows()),
            _clean(influx.status(SCOPE, latest=True).rows()),
        )
        assert sa == sb
        assert (
            sa[0]["agent_version"] == "1.2.3" and sa[0]["uplink_rsrp_dbm"] == -97.0 and sa[0]["backlog"] == 4
        )
        assert _clean(duck.ledger(SCOPE).rows()) == _clean(influx.ledger(SCOPE).rows())
        assert duck.ledger(SCOPE).rows()[0]["duplicated"] == 2
    finally:
        duck.close()
        influx.close()
