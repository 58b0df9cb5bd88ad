"""Ingester.handle and the write path over the in-memory sink: no broker, no database.

The real-server tests (``test_*_e2e.py``) prove the same paths end to end; these prove the
validation and enrichment rules in milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contract import encode, topic_for
from contract.errors import TopicError
from contract.topics import parse_topic
from ingest.metrics import Latency
from ingest.model import WriteBatch
from ingest.mqtt import Message
from ingest.service import Ingester
from tests.fakes import FakeSink
from tests.ingest.helpers import batch_for, ingest_settings

ROOT = "pwunit"


def _ingester(tmp_path: Path, sink: FakeSink) -> Ingester:
    settings = ingest_settings(
        broker_port=1,
        root=ROOT,
        client_id="ing-unit",
        sink={"type": "duckdb", "path": ":memory:"},
        tmp=tmp_path,
    )
    return Ingester(settings, sink=sink)


def _message(topic: str, payload: bytes, *, dup: bool = False) -> Message:
    return Message(
        topic=topic,
        payload=payload,
        received_ms=int(time.time() * 1000),
        content_type=None,
        mid=1,
        qos=1,
        generation=0,
        dup=dup,
    )


def test_a_valid_batch_becomes_one_enriched_part(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, FakeSink())
    out = WriteBatch()
    batch = batch_for("gw-01", 0, 8)
    n = ing.handle(_message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), encode(batch)), out)
    assert n == 8 and not out.dead_letters
    (part,) = out.parts
    assert (part.park, part.gw, len(part.readings), part.replay) == ("vsip", "gw-01", 8, False)
    assert len(part.h3) == 8 and any(part.h3)  # positioned cellular readings got a cell


def test_a_gateway_publishing_as_another_is_dead_lettered_with_the_reason(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, FakeSink())
    out = WriteBatch()
    payload = encode(batch_for("gw-02", 0, 4))
    assert ing.handle(_message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), payload), out) == 0
    (dead,) = out.dead_letters
    assert not out.parts and dead.gw == "gw-01" and "may publish only as itself" in dead.reason


def test_a_sequence_number_seen_before_is_flagged_as_a_replay(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, FakeSink())
    topic = topic_for("vsip", "gw-01", "telemetry", root=ROOT)
    payload = encode(batch_for("gw-01", 5, 2))
    first, again = WriteBatch(), WriteBatch()
    ing.handle(_message(topic, payload), first)
    ing.handle(_message(topic, payload), again)
    assert [p.replay for p in first.parts + again.parts] == [False, True]


def test_malformed_json_and_a_bad_topic_are_dead_letters_not_errors(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, FakeSink())
    out = WriteBatch()
    assert ing.handle(_message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), b"{not json"), out) == 0
    assert ing.handle(_message(f"{ROOT}/v1/vsip/gw-01\n/up/telemetry", b"{}"), out) == 0
    assert len(out.dead_letters) == 2 and not out.parts


def test_a_refused_topic_is_refused_again_with_the_same_reason(tmp_path: Path) -> None:
    """Topic names are parsed once and cached, refusals included: a repeat gets the same answer."""
    ing = _ingester(tmp_path, FakeSink())
    bad = [
        f"{ROOT}/v1/vsip/gw-01\n/up/telemetry",  # an id ending in a newline
        f"{ROOT}/v1/vsip/gw-01/up",  # a segment short
        f"{ROOT}/v1/vsip/gw 01/up/telemetry",  # not an id
        f"{ROOT}/v1/vsip/gw-01/up/firmware",  # no such channel
        "other/v1/vsip/gw-01/up/telemetry",  # another root
    ]
    expected = []
    for topic in bad:
        with pytest.raises(TopicError) as refused:
            parse_topic(topic, root=ROOT)
        expected.append(refused.value.reason)
    payload = encode(batch_for("gw-01", 0, 1))
    for _ in range(3):
        out = WriteBatch()
        for topic in bad:
            assert ing.handle(_message(topic, payload), out) == 0
        assert [d.reason for d in out.dead_letters] == expected
        assert [d.topic for d in out.dead_letters] == bad and not out.parts
    assert ing.metrics.messages["invalid"] == 3 * len(bad)
    assert ing.metrics.dead_letters["topic"] == 3 * len(bad)
    good = WriteBatch()
    assert ing.handle(_message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), payload), good) == 1
    assert ing.handle(_message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), payload), good) == 1
    assert ing.metrics.messages["telemetry"] == 2 and len(good.parts) == 2 and not good.dead_letters


def test_metrics_show_the_channels_seen_and_only_those(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, FakeSink())
    assert b"parkwatch_ingest_messages_total{" not in ing.metrics.render()
    payload = encode(batch_for("gw-01", 0, 1))
    out = WriteBatch()
    for seq in range(2):
        ing.handle(
            _message(topic_for("vsip", "gw-01", "telemetry", root=ROOT), encode(batch_for("gw-01", seq, 1))),
            out,
        )
    ing.handle(_message(f"{ROOT}/v1/vsip/gw-01/up", payload), out)
    lines = [
        line
        for line in ing.metrics.render().decode().splitlines()
        if line.startswith("parkwatch_ingest_messages_total")
    ]
    assert sorted(lines) == [
        'parkwatch_ingest_messages_total{channel="invalid"} 1.0',
        'parkwatch_ingest_messages_total{channel="telemetry"} 2.0',
    ]


def test_the_latency_histogram_counts_each_stamped_message_once() -> None:
    hist = Latency("x_seconds", "test")
    now_ms = 1_000_000.0
    # No stamp (0), 40 ms, 40 ms, 2 s, and a sender's clock 300 ms ahead (counted as 0).
    hist.observe_since_ms(now_ms, [0, 999_960, 999_960, 998_000, 1_000_300])
    assert hist.count == 4
    assert hist.sum_s == pytest.approx(0.04 + 0.04 + 2.0)
    buckets = {s.labels["le"]: s.value for s in hist.metric().samples if s.name.endswith("_bucket")}
    assert (buckets["0.005"], buckets["0.05"], buckets["1.5"], buckets["2.5"], buckets["+Inf"]) == (
        1,
        3,
        3,
        4,
        4,
    )


def test_status_messages_and_channels_the_ingester_does_not_take(tmp_path: Path) -> None:
    """Everything but telemetry leaves the telemetry path: a status becomes a status row (or a
    dead letter with its reason), a down-link channel a dead letter; none touches the ledger."""
    ing = _ingester(tmp_path, FakeSink())
    out = WriteBatch()
    status = topic_for("vsip", "gw-01", "status", root=ROOT)
    msg = _message(status, b'{"v":1,"gw":"gw-01","state":"offline","ts":1700000000000}')
    assert ing.handle(msg, out) == 0
    (row,) = out.statuses
    assert (row.park, row.gw, row.ts_ms, row.status.state) == ("vsip", "gw-01", 1_700_000_000_000, "offline")
    no_stamp = _message(status, b'{"v":1,"gw":"gw-01","state":"online"}')
    assert ing.handle(no_stamp, out) == 0 and out.statuses[1].ts_ms == no_stamp.received_ms
    assert ing.handle(_message(status, b'{"v":1,"gw":"gw-01","state":"sleepy"}'), out) == 0
    assert ing.handle(_message(status, b'{"v":1,"gw":"gw-02","state":"online"}'), out) == 0
    assert ing.handle(_message(topic_for("vsip", "gw-01", "config", root=ROOT), b"{}"), out) == 0
    first, mismatch, down = (d.reason for d in out.dead_letters)
    assert first.startswith("status: ") and "state" in first
    assert mismatch == "status gateway 'gw-02' does not match the topic's gateway 'gw-01'"
    assert down == "the ingester does not take down/config messages"
    assert len(out.statuses) == 2 and not out.parts
    assert ing.metrics.dead_letters["status"] == 1 and ing.metrics.dead_letters["gateway_mismatch"] == 1
    assert ing.metrics.dead_letters["topic"] == 1
    assert (ing.metrics.messages["status"], ing.metrics.messages["config"]) == (4, 1)
    assert ing.ledger.last_seq("gw-01") == -1
