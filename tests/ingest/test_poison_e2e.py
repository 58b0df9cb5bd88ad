"""One poison message never stops ingestion: hostile and faulty input beside a canary gateway,
on real Mosquitto, InfluxDB and DuckDB.

Each case runs with a canary gateway publishing readings that must all be stored, exactly; the
poison is dead-lettered with a reason that says what was wrong.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from contract import Batch, Energy, Status, encode, kind_of, topic_for
from contract.limits import MAX_DEAD_LETTER_RAW_BYTES, MAX_PAYLOAD_BYTES
from contract.messages import Uplink
from contract.topics import Channel
from ingest.isolate import write_isolating
from ingest.model import Part, StatusRow, WriteBatch
from ingest.sinks.base import load_sink
from tests.ingest.helpers import (
    COUNT_FIELD,
    Publisher,
    batch_for,
    influx_rows,
    ingest_settings,
    readings_for,
    running,
    wait_until,
)
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration

PARK = "hp-a"
CANARY = "gw-canary"
_mp = msgspec.msgpack.Encoder()


class Store:
    """Counts and rows of one real store, read the same way for both sinks."""

    def __init__(self, kind: str, sink: dict[str, Any], server: ServerProcess | None) -> None:
        self.kind = kind
        self.sink = sink
        self.server = server

    async def count(self, measurement: str, gw: str) -> int:
        if self.kind == "duckdb":
            with duckdb.connect(self.sink["path"], read_only=True) as con:
                row = con.execute(f"SELECT count(*) FROM {measurement} WHERE gw = ?", [gw]).fetchone()
            return int(row[0]) if row else 0
        assert self.server is not None
        field = COUNT_FIELD[measurement]
        rows = await influx_rows(
            self.server.port,
            self.sink["database"],
            f'SELECT count("{field}") FROM "{measurement}" WHERE gw = \'{gw}\'',
        )
        return int(rows[0]["count"]) if rows else 0

    async def dead_letters(self) -> list[tuple[str, str, str]]:
        """(gw, reason, raw) of every dead letter."""
        if self.kind == "duckdb":
            with duckdb.connect(self.sink["path"], read_only=True) as con:
                return [
                    (g, r, w) for g, r, w in con.execute("SELECT gw, reason, raw FROM dead_letter").fetchall()
                ]
        assert self.server is not None
        rows = await influx_rows(
            self.server.port, self.sink["database"], 'SELECT "reason", "raw" FROM dead_letter GROUP BY gw'
        )
        return [(r["gw"], r["reason"], r["raw"]) for r in rows]

    async def ledger(self, gw: str) -> dict[str, int]:
        if self.kind == "duckdb":
            with duckdb.connect(self.sink["path"], read_only=True) as con:
                row = con.execute(
                    "SELECT received, missing, restarts, last_seq FROM loss_ledger WHERE gw = ? ORDER BY ts DESC, received DESC LIMIT 1",
                    [gw],
                ).fetchone()
            assert row is not None
            return dict(zip(("received", "missing", "restarts", "last_seq"), row, strict=True))
        assert self.server is not None
        rows = await influx_rows(
            self.server.port,
            self.sink["database"],
            f"SELECT last(received) AS received, last(missing) AS missing, last(restarts) AS restarts, "
            f"last(last_seq) AS last_seq FROM loss_ledger WHERE gw = '{gw}'",
        )
        return {k: int(rows[0][k]) for k in ("received", "missing", "restarts", "last_seq")}


@pytest.fixture(params=["influxdb", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path, influx_db_name: str) -> Store:
    if request.param == "duckdb":
        return Store("duckdb", {"type": "duckdb", "path": str(tmp_path / "store.duckdb")}, None)
    server: ServerProcess = request.getfixturevalue("influxdb")
    sink = {"type": "influxdb", "url": f"http://127.0.0.1:{server.port}", "database": influx_db_name}
    return Store("influxdb", sink, server)


def _msgpack_batch(gw: str, *readings: bytes) -> bytes:
    head = _mp.encode({"v": 1, "gw": gw, "seq": 0})
    return b"\x84" + head[1:] + _mp.encode("readings") + bytes([0x90 + len(readings)]) + b"".join(readings)


def _poison(root: str) -> list[tuple[str, bytes]]:
    """Poison messages as (topic, payload), in publishing order."""
    t: Callable[[str, Channel], str] = lambda gw, ch: topic_for(PARK, gw, ch, root=root)  # noqa: E731
    good = [msgspec.json.encode(r).decode() for r in readings_for("gw-deep", 0, 2)]
    deep = "[" * 100_000 + "]" * 100_000
    deep_reading = f'{{"kind":"generic","ts":{readings_for("x", 0, 1)[0].ts},"dev":"x","f":{{"a":{deep}}}}}'
    deep_batch = f'{{"v":1,"gw":"gw-deep","seq":0,"readings":[{good[0]},{deep_reading},{good[1]}]}}'
    utf_good = [_mp.encode(r) for r in readings_for("gw-utf", 0, 2)]
    ts = readings_for("x", 0, 1)[0].ts
    bad_utf = b"\x84" + b"".join(_mp.encode(x) for x in ("kind", "energy", "ts", ts, "dev")) + b"\xa2\xff\xfe"
    bad_utf += _mp.encode("power_kw") + _mp.encode(1.0)
    huge = encode(Batch(v=1, gw="gw-huge", seq=0, readings=readings_for("gw-huge", 0, 1)))
    huge = (
        huge[:-2]
        + b',{"kind":"generic","ts":1,"dev":"pad","f":{"pad":"'
        + b"x" * (MAX_PAYLOAD_BYTES + 40_000)
        + b'"}}]}'
    )
    seq_batches = [
        encode(Batch(v=1, gw="gw-seq", seq=s, readings=readings_for("gw-seq", i, 1)))
        for i, s in enumerate((2**63 - 1, 0, 1, 2))
    ]
    messages = [
        (
            t("gw-big", "status"),
            json.dumps({"v": 1, "gw": "gw-big", "state": "online", "backlog": 2**64 - 1}).encode(),
        ),
        (t("gw-deep", "telemetry"), deep_batch.encode()),
        (t("gw-utf", "telemetry"), _msgpack_batch("gw-utf", utf_good[0], bad_utf, utf_good[1])),
        (t("gw-huge", "telemetry"), huge),
        *((t("gw-seq", "telemetry"), b) for b in seq_batches),
    ]
    return messages


async def test_poison_never_stops_the_canary(
    mosquitto: ServerProcess, store: Store, topic_root: str, unique: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        broker_port=mosquitto.port, root=topic_root, client_id=f"ing-{unique}", sink=store.sink, tmp=tmp_path
    )
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
    # Retained before the ingester subscribes, and in MessagePack: the case that stopped everything.
    nan_status = _mp.encode(
        {"v": 1, "gw": "gw-nan", "state": "online", "uplink": {"tech": "LTE", "rsrp_dbm": math.nan}}
    )
    pub.publish(
        topic_for(PARK, "gw-nan", "status", root=topic_root), nan_status, retain=True
    ).wait_for_publish(10)
    poison = _poison(topic_root)
    canary = [batch_for(CANARY, seq, 50) for seq in range(10)]
    valid_beside_poison = 2 + 2 + 4  # gw-deep, gw-utf, gw-seq
    try:
        async with running(settings) as ing:
            for i, b in enumerate(canary):
                pub.publish_batches(topic_root, PARK, [b])
                if i < len(poison):
                    pub.publish(*poison[i]).wait_for_publish(10)
            for msg in poison[len(canary) :]:
                pub.publish(*msg).wait_for_publish(10)
            total = 500 + valid_beside_poison
            await wait_until(lambda: ing.metrics.readings_stored >= total, what=f"{total} readings stored")
            await wait_until(lambda: sum(ing.metrics.dead_letters.values()) >= 5, what="5 dead letters")
            await wait_until(lambda: ing.spool.depth == 0 and ing.consumer.pending == 0, what="all acked")
            assert ing.metrics.batches_spooled == 0
            assert ing.metrics.readings_stored == total
            assert ing.ledger.totals()["restarts"]["gw-seq"] == 1
    finally:
        pub.publish(topic_for(PARK, "gw-nan", "status", root=topic_root), b"", retain=True).wait_for_publish(
            10
        )
        pub.close()
    expected = Counter(kind_of(r) for b in canary for r in b.readings)
    assert {k: await store.count(k, CANARY) for k in expected} == expected
    assert await store.count("cellular", "gw-deep") + await store.count("machine", "gw-deep") == 2
    assert await store.count("cellular", "gw-utf") + await store.count("machine", "gw-utf") == 2
    dead = await store.dead_letters()
    by_gw: dict[str, list[tuple[str, str]]] = {}
    for gw, reason, raw in dead:
        by_gw.setdefault(gw, []).append((reason, raw))
    assert set(by_gw) == {"gw-nan", "gw-big", "gw-deep", "gw-utf", "gw-huge"}, dead
    assert all(len(v) == 1 for v in by_gw.values()), by_gw
    assert by_gw["gw-nan"][0][0].startswith("status: ") and "uplink.rsrp_dbm" in by_gw["gw-nan"][0][0]
    assert by_gw["gw-big"][0][0].startswith("status: ") and "backlog" in by_gw["gw-big"][0][0]
    assert by_gw["gw-deep"][0][0].startswith("malformed: nested too deeply")
    assert by_gw["gw-utf"][0][0].startswith("malformed: ") and "UTF-8" in by_gw["gw-utf"][0][0]
    reason, raw = by_gw["gw-huge"][0]
    assert reason.startswith(
        f"payload of {len(poison[3][1])} bytes exceeds the contract's limit of {MAX_PAYLOAD_BYTES}"
    )
    assert 0 < len(raw.encode()) <= MAX_DEAD_LETTER_RAW_BYTES
    assert await store.ledger("gw-seq") == {"received": 4, "missing": 0, "restarts": 1, "last_seq": 2}
    assert (await store.ledger(CANARY))["missing"] == 0


async def test_a_row_the_store_refuses_is_isolated_on_the_real_store(
    store: Store, unique: str, tmp_path: Path
) -> None:
    """Past the contract (a sink fed directly): the store's own refusal narrows down to the row."""
    settings = ingest_settings(
        broker_port=1, root="t", client_id=f"ing-{unique}", sink=store.sink, tmp=tmp_path
    )
    sink = load_sink(settings.sink, src=f"ing-{unique}")
    canary = readings_for(CANARY, 0, 200)
    now = canary[0].ts
    big = Status(v=1, gw="gw-big", state="online", backlog=2**64 - 1)  # constructors do not validate
    nan = Status(v=1, gw="gw-nan", state="online", uplink=Uplink(rsrp_dbm=math.nan))
    batch = WriteBatch(
        parts=[Part(park=PARK, gw=CANARY, readings=canary, h3=[0] * len(canary))],
        statuses=[
            StatusRow(ts_ms=now, park=PARK, gw=g, status=s) for g, s in (("gw-big", big), ("gw-nan", nan))
        ],
    )
    clock = itertools.count(now * 1_000_000).__next__
    await sink.start()
    try:
        iso = await write_isolating(sink, batch, src=f"ing-{unique}", clock=clock)
    finally:
        await sink.aclose()
    assert iso.result.readings == 200
    expected = Counter(kind_of(r) for r in canary)
    assert {k: await store.count(k, CANARY) for k in expected} == expected
    dead = {gw: reason for gw, reason, _ in await store.dead_letters()}
    # DuckDB can hold a NaN double (the contract keeps it out); line protocol cannot.
    assert set(dead) == ({"gw-big", "gw-nan"} if store.kind == "influxdb" else {"gw-big"})
    assert all("refused" in r or "not storable" in r for r in dead.values()), dead


def _healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_sink_error_repeating_for_the_same_batch_turns_health_degraded(
    mosquitto: ServerProcess, influxdb_fresh: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    sink = {"type": "influxdb", "url": f"http://127.0.0.1:{influxdb_fresh.port}", "database": f"pw_{unique}"}
    settings = ingest_settings(
        broker_port=mosquitto.port,
        root=topic_root,
        client_id=f"ing-{unique}",
        sink=sink,
        tmp=tmp_path,
        metrics_port=port,
    )
    canary = [batch_for(CANARY, seq, 20) for seq in range(6)]
    async with running(settings) as ing:
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, PARK, canary[:3])
        await wait_until(lambda: ing.metrics.readings_stored >= 60, what="first 60 readings")
        assert await asyncio.to_thread(_healthz, port) == (200, "ok\n")
        await asyncio.to_thread(influxdb_fresh.stop)
        pub.publish_batches(topic_root, PARK, canary[3:])
        await wait_until(lambda: ing.metrics.degraded != "", what="degraded")
        status, body = await asyncio.to_thread(_healthz, port)
        assert status == 503 and body.startswith(
            "degraded: the sink failed 3 times in a row on the same batch: sink unavailable"
        )
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        assert "parkwatch_ingest_degraded 1" in metrics
        assert 'parkwatch_ingest_sink_errors_total{class="unavailable"}' in metrics
        await asyncio.to_thread(influxdb_fresh.start)
        await wait_until(lambda: ing.metrics.readings_stored >= 120, what="all 120 readings after the outage")
        await wait_until(lambda: ing.spool.depth == 0, what="spool drained")
        assert await asyncio.to_thread(_healthz, port) == (200, "ok\n")
        pub.close()
    rows = await influx_rows(influxdb_fresh.port, sink["database"], 'SELECT count("power_kw") FROM energy')
    assert int(rows[0]["count"]) == sum(1 for b in canary for r in b.readings if isinstance(r, Energy))
