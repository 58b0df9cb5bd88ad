"""End to end into a real InfluxDB 1.x through a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract import Batch, Cellular, Generic, encode, kind_of, topic_for
from contract.readings import AnyReading
from storage.query import Scope
from storage.query_influx import InfluxQuery
from tests.ingest.helpers import (
    Publisher,
    batch_for,
    influx_count,
    influx_rows,
    ingest_settings,
    running,
    wait_until,
)
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

HOSTILE = [
    "comma,here",
    "space here",
    'quote"here',
    "equals=here",
    "back\\slash",
    "new\nline",
    'all, of = "them" \\ together\n',
    "trailing backslash\\",
]


def _sink(server: ServerProcess, db: str) -> dict[str, object]:
    return {"type": "influxdb", "url": f"http://127.0.0.1:{server.port}", "database": db}


async def _counts(port: int, db: str, kinds: list[str]) -> dict[str, int]:
    return {k: await influx_count(port, db, k) for k in kinds}


async def test_n_published_n_stored(
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
        sink=_sink(influxdb, influx_db_name),
        tmp=tmp_path,
    )
    batches = [batch_for(f"gw-{g}", seq, 40) for g in range(2) for seq in range(20)]
    expected = Counter(kind_of(r) for b in batches for r in b.readings)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches)
        pub.close()
        await wait_until(lambda: ing.metrics.readings_stored >= expected.total(), what="all readings written")
    assert await _counts(influxdb.port, influx_db_name, list(expected)) == expected
    ledger = await influx_rows(
        influxdb.port, influx_db_name, "SELECT last(received), last(missing) FROM loss_ledger GROUP BY gw"
    )
    assert {r["gw"]: (r["last"], r["last_1"]) for r in ledger} == {"gw-0": (20, 0), "gw-1": (20, 0)}


async def test_hostile_strings_round_trip(
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
        sink=_sink(influxdb, influx_db_name),
        tmp=tmp_path,
    )
    now = int(time.time() * 1000) - 10_000
    readings: list[AnyReading] = [
        Generic(ts=now + i, dev="probe.1", f={"note": text}) for i, text in enumerate(HOSTILE)
    ]
    storable_tags = [t for t in HOSTILE if "\n" not in t and not t.endswith("\\") and "\\ " not in t]
    readings += [
        Cellular(
            ts=now + 100 + i, dev="modem-1", operator=text, tech="NR", rsrp_dbm=-90.0, tags={"site": text}
        )
        for i, text in enumerate(HOSTILE)
    ]
    batch = Batch(v=1, gw="gw-h", seq=1, readings=readings)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", [batch])
        pub.close()
        await wait_until(lambda: ing.metrics.batches_written >= 1, what="the batch written")
    notes = await influx_rows(influxdb.port, influx_db_name, "SELECT text FROM generic ORDER BY time")
    assert [r["text"] for r in notes] == HOSTILE
    cells = await influx_rows(
        influxdb.port, influx_db_name, 'SELECT rsrp_dbm, "operator", site FROM cellular'
    )
    assert sorted(r["operator"] for r in cells) == sorted(storable_tags)
    assert all(r["site"] == r["operator"] for r in cells)
    dead = await influx_rows(influxdb.port, influx_db_name, "SELECT reason, raw FROM dead_letter")
    assert len(dead) == len(HOSTILE) - len(storable_tags)
    assert all("InfluxDB tags cannot hold" in r["reason"] for r in dead)
    assert sorted(json.loads(r["raw"])["operator"] for r in dead) == sorted(set(HOSTILE) - set(storable_tags))


async def test_outage_spools_and_replays_without_loss(
    mosquitto: ServerProcess,
    influxdb_fresh: ServerProcess,
    topic_root: str,
    unique: str,
    influx_db_name: str,
    tmp_path: Path,
) -> None:
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink=_sink(influxdb_fresh, influx_db_name) | {"timeout_s": 2.0},
        tmp=tmp_path,
    )
    batches = [batch_for("gw-o", seq, 25) for seq in range(60)]
    expected = Counter(kind_of(r) for b in batches for r in b.readings)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches[:20])
        await wait_until(lambda: ing.metrics.readings_stored >= 500, what="first third written")
        await asyncio.to_thread(influxdb_fresh.stop)
        pub.publish_batches(topic_root, "hp-a", batches[20:40])
        await wait_until(lambda: ing.metrics.batches_spooled >= 1, what="batches spooled")
        await asyncio.sleep(1.5)
        await asyncio.to_thread(influxdb_fresh.start)
        pub.publish_batches(topic_root, "hp-a", batches[40:])
        pub.close()
        await wait_until(
            lambda: ing.spool.depth == 0 and ing.metrics.readings_stored >= expected.total(),
            what="spool replayed",
        )
        assert ing.metrics.batches_replayed >= 1
    assert await _counts(influxdb_fresh.port, influx_db_name, list(expected)) == expected


async def test_shared_subscription_splits_every_reading_once(
    mosquitto: ServerProcess,
    influxdb: ServerProcess,
    topic_root: str,
    unique: str,
    influx_db_name: str,
    tmp_path: Path,
) -> None:
    group = f"g{unique}"
    s1, s2 = (
        ingest_settings(
            broker_port=mosquitto.port,
            root=topic_root,
            client_id=f"ing{i}-{unique}",
            sink=_sink(influxdb, influx_db_name),
            tmp=tmp_path,
            share_group=group,
        )
        for i in (1, 2)
    )
    # Three gateways, each numbering its 30 batches 0..29, interleaved.
    batches = [batch_for(f"gw-{k % 3}", k // 3, 20) for k in range(90)]
    expected = Counter(kind_of(r) for b in batches for r in b.readings)
    async with running(s1) as a, running(s2) as b:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches)
        pub.close()
        total = expected.total()
        await wait_until(
            lambda: a.metrics.readings_stored + b.metrics.readings_stored >= total, what="all written"
        )
        await asyncio.sleep(0.5)
        assert a.metrics.readings_stored + b.metrics.readings_stored == total
        assert a.metrics.readings_stored > 0 and b.metrics.readings_stored > 0
    assert await _counts(influxdb.port, influx_db_name, list(expected)) == expected
    # Each ingester saw only some of every gateway's sequence numbers; read together, the
    # ledgers account for every batch once and see nothing missing.
    ledger = InfluxQuery(url=f"http://127.0.0.1:{influxdb.port}", database=influx_db_name).ledger(
        Scope(parks=("hp-a",), start=datetime.now(UTC) - timedelta(days=1), end=datetime.now(UTC))
    )
    rows = {r["gw"]: r for r in ledger.rows()}
    assert sorted(rows) == ["gw-0", "gw-1", "gw-2"]
    for r in rows.values():
        assert (r["received"], r["missing"], r["duplicated"], r["last_seq"]) == (30, 0, 0, 29), r
    tagged = await influx_rows(
        influxdb.port,
        influx_db_name,
        "SELECT last(received) AS received FROM loss_ledger GROUP BY gw, ingester",
    )
    assert {r["ingester"] for r in tagged} == {f"ing1-{unique}", f"ing2-{unique}"}


async def test_spoofed_gateway_is_rejected(
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
        sink=_sink(influxdb, influx_db_name),
        tmp=tmp_path,
    )
    honest, spoofed = batch_for("gw-a", 1, 5), batch_for("gw-a", 2, 5)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish(topic_for("hp-a", "gw-a", "telemetry", root=topic_root), encode(honest)).wait_for_publish(
            10
        )
        # gw-b publishes a batch claiming to be gw-a, into its own topic
        pub.publish(
            topic_for("hp-a", "gw-b", "telemetry", root=topic_root), encode(spoofed)
        ).wait_for_publish(10)
        pub.close()
        await wait_until(
            lambda: ing.metrics.dead_letters["gateway_mismatch"] == 1 and ing.metrics.readings_stored == 5,
            what="spoof dead-lettered",
        )
    dead = await influx_rows(influxdb.port, influx_db_name, "SELECT reason, topic, gw FROM dead_letter")
    assert len(dead) == 1 and dead[0]["gw"] == "gw-b"
    assert "does not match the topic's gateway 'gw-b'" in dead[0]["reason"]
    stored = await influx_rows(influxdb.port, influx_db_name, "SELECT rsrp_dbm FROM cellular GROUP BY gw")
    assert {r["gw"] for r in stored} == {"gw-a"}


async def test_identical_dead_letters_do_not_overwrite_each_other(
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
        sink=_sink(influxdb, influx_db_name),
        tmp=tmp_path,
    )
    topic = topic_for("hp-a", "gw-d", "telemetry", root=topic_root)
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        for info in [pub.publish(topic, b"not json at all") for _ in range(5)]:
            info.wait_for_publish(10)
        pub.close()
        await wait_until(lambda: ing.metrics.dead_letters["payload"] == 5, what="5 dead letters")
        await wait_until(lambda: ing.consumer.pending == 0, what="acked")
    dead = await influx_rows(influxdb.port, influx_db_name, "SELECT reason, raw, src FROM dead_letter")
    assert len(dead) == 5
    assert {r["raw"] for r in dead} == {"not json at all"}
    assert len({r["time"] for r in dead}) == 5


async def test_retention_policy_and_ledger_reload(influxdb: ServerProcess, influx_db_name: str) -> None:
    from ingest.model import LedgerRow, Part, WriteBatch
    from ingest.sinks.influxdb import InfluxSink
    from settings.ingest import InfluxSinkSettings
    from storage.ledger_snapshot import LedgerSnapshot
    from tests.ingest.helpers import readings_for

    settings = InfluxSinkSettings(
        url=f"http://127.0.0.1:{influxdb.port}",
        database=influx_db_name,
        retention_policy="week",
        retention_days=7,
    )
    sink = InfluxSink(settings, src="ing-rp")
    assert await sink.start() == []
    readings = readings_for("gw-rp", 1, 8)
    now = int(time.time() * 1000)
    ledger = [
        LedgerRow(
            ts_ms=now - 1, park="hp-a", gw="gw-rp", received=3, missing=1, duplicated=0, late=0, last_seq=3
        ),
        LedgerRow(
            ts_ms=now, park="hp-a", gw="gw-rp", received=4, missing=0, duplicated=1, late=1, last_seq=4
        ),
    ]
    batch = WriteBatch(parts=[Part(park="hp-a", gw="gw-rp", readings=readings, h3=[0] * 8)], ledger=ledger)
    await sink.write(batch)
    await sink.aclose()
    sink = InfluxSink(settings, src="ing-rp")
    # a second start finds the policy in place and reloads the latest ledger snapshot
    assert await sink.start() == [
        LedgerSnapshot(park="hp-a", gw="gw-rp", received=4, missing=0, duplicated=1, late=1, last_seq=4)
    ]
    await sink.aclose()
    policies = await influx_rows(
        influxdb.port, influx_db_name, f'SHOW RETENTION POLICIES ON "{influx_db_name}"'
    )
    assert {(p["name"], p["duration"]) for p in policies} >= {("week", "168h0m0s")}
    stored = await influx_rows(
        influxdb.port, influx_db_name, 'SELECT count("rsrp_dbm") FROM "week"."cellular"'
    )
    assert stored[0]["count"] == sum(1 for r in readings if kind_of(r) == "cellular")
