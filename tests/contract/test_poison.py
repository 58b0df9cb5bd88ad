"""Hostile payloads rejected at the right grain: one reading, one status, never the whole batch."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import Batch, PayloadError, Status, decode_batch, decode_message, encode
from contract.codec import Encoding, _json_reading_spans, _msgpack_reading_spans
from tests.contract.strategies import NOW, batches

_mp = msgspec.msgpack.Encoder()
GOOD = {"kind": "energy", "ts": NOW - 1000, "dev": "m1", "power_kw": 3.5}
DEPTH = 100_000


def _msgpack_batch(*readings: bytes) -> bytes:
    head = _mp.encode({"v": 1, "gw": "gw-1", "seq": 1})
    # Re-open the 3-entry map as a 4-entry one and append the readings array by hand.
    return b"\x84" + head[1:] + _mp.encode("readings") + bytes([0x90 + len(readings)]) + b"".join(readings)


def _json_batch(*readings: str) -> bytes:
    return ('{"v":1,"gw":"gw-1","seq":1,"readings":[' + ",".join(readings) + "]}").encode()


def test_json_reading_nested_100k_deep_rejects_only_that_reading() -> None:
    deep = "[" * DEPTH + "]" * DEPTH
    bad = f'{{"kind":"generic","ts":{NOW},"dev":"x","f":{{"a":{deep}}}}}'
    out = decode_batch(
        _json_batch(
            msgspec.json.encode(GOOD).decode(), bad, msgspec.json.encode({**GOOD, "dev": "m2"}).decode()
        ),
        now_ms=NOW,
    )
    assert [r.dev for r in out.readings] == ["m1", "m2"]
    assert [r.index for r in out.rejected] == [1]


def test_json_reading_nested_deep_in_a_tag_value_rejects_only_that_reading() -> None:
    depth = 40_000  # 6 bytes a level: the payload stays under the size limit
    deep = '{"a":' * depth + "1" + "}" * depth
    bad = f'{{"kind":"energy","ts":{NOW},"dev":"x","tags":{{"line":{deep}}}}}'
    out = decode_batch(_json_batch(bad, msgspec.json.encode(GOOD).decode()), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1"]
    assert [r.index for r in out.rejected] == [0]


def test_msgpack_reading_nested_100k_deep_rejects_only_that_reading() -> None:
    bad = (
        b"\x84"
        + b"".join(_mp.encode(x) for x in ("kind", "generic", "ts", NOW, "dev", "x", "f"))
        + b"\x81"
        + _mp.encode("a")
        + b"\x91" * DEPTH
        + b"\xc0"
    )
    out = decode_batch(_msgpack_batch(_mp.encode(GOOD), bad, _mp.encode({**GOOD, "dev": "m2"})), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1", "m2"]
    assert [r.index for r in out.rejected] == [1]


def test_nesting_in_the_envelope_rejects_the_batch_with_a_reason() -> None:
    deep = "[" * DEPTH + "]" * DEPTH
    with pytest.raises(PayloadError, match=r"unknown field `x`"):
        decode_batch(f'{{"v":1,"gw":"gw-1","seq":1,"x":{deep},"readings":[]}}'.encode(), now_ms=NOW)
    reading = msgspec.json.encode(GOOD).decode()
    with pytest.raises(PayloadError, match=r"at `\$\.sent`"):
        decode_batch(
            f'{{"v":1,"gw":"gw-1","seq":1,"readings":[{reading}],"sent":{deep}}}'.encode(), now_ms=NOW
        )


def test_msgpack_invalid_utf8_in_one_reading_rejects_only_that_reading() -> None:
    bad = b"\x84" + b"".join(_mp.encode(x) for x in ("kind", "energy", "ts", NOW, "dev")) + b"\xa2\xff\xfe"
    bad += _mp.encode("power_kw") + _mp.encode(1.0)
    out = decode_batch(_msgpack_batch(_mp.encode(GOOD), bad, _mp.encode({**GOOD, "dev": "m2"})), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1", "m2"]
    assert [r.index for r in out.rejected] == [1]
    assert "UTF-8" in out.rejected[0].reason


def test_msgpack_invalid_utf8_in_the_envelope_rejects_the_batch() -> None:
    payload = b"\x84" + _mp.encode("v") + _mp.encode(1) + _mp.encode("gw") + b"\xa2\xff\xfe"
    payload += _mp.encode("seq") + _mp.encode(1) + _mp.encode("readings") + b"\x91" + _mp.encode(GOOD)
    with pytest.raises(PayloadError, match="UTF-8"):
        decode_batch(payload, now_ms=NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rsrp_dbm", math.nan),
        ("rsrp_dbm", math.inf),
        ("rsrp_dbm", -math.inf),
        ("rsrp_dbm", 0.0),
        ("sinr_db", math.nan),
        ("sinr_db", 99.0),
    ],
)
def test_status_uplink_out_of_range_is_refused(field: str, value: float) -> None:
    payload = _mp.encode({"v": 1, "gw": "gw-1", "state": "online", "uplink": {"tech": "LTE", field: value}})
    with pytest.raises(PayloadError, match=f"uplink.{field}"):
        decode_message(payload, Status)


@pytest.mark.parametrize("field", ["backlog", "dropped"])
@pytest.mark.parametrize("value", [2**64 - 1, 2**63 - 1, 2**53, -1])
def test_status_counts_beyond_what_stores_keep_exactly_are_refused(field: str, value: int) -> None:
    payload = _mp.encode({"v": 1, "gw": "gw-1", "state": "online", field: value})
    with pytest.raises(PayloadError, match=field):
        decode_message(payload, Status)


def test_status_at_the_range_edges_decodes() -> None:
    status = decode_message(
        _mp.encode(
            {
                "v": 1,
                "gw": "gw-1",
                "state": "online",
                "backlog": 2**53 - 1,
                "dropped": 0,
                "uplink": {"rsrp_dbm": -156.0, "sinr_db": 40.0},
            }
        ),
        Status,
    )
    assert status.backlog == 2**53 - 1 and status.uplink is not None and status.uplink.rsrp_dbm == -156.0


@settings(max_examples=60, deadline=None)
@given(batch=batches, encoding=st.sampled_from(["json", "msgpack"]))
def test_iterative_reading_spans_match_the_decoder(batch: Batch, encoding: Encoding) -> None:
    payload = encode(batch, encoding)
    spans = (_json_reading_spans if encoding == "json" else _msgpack_reading_spans)(payload)
    found = [payload[a:b] for a, b in spans]
    assert found, "no spans found"
    dec = msgspec.json if encoding == "json" else msgspec.msgpack
    assert [dec.decode(f) for f in found] == [
        dec.decode(encode(batch, encoding))["readings"][i] for i in range(len(batch.readings))
    ]


def test_integers_beyond_64_bits_are_refused_or_dropped_not_a_crash() -> None:
    """JSON can say -2**63 - 1; MessagePack (the salvage path's re-encoding) cannot carry it."""
    import time as _time

    now = int(_time.time() * 1000)
    common = {"kind": "cellular", "ts": now - 1000, "operator": "X", "tech": "LTE", "rsrp_dbm": -90.0}
    doc = {
        "v": 1,
        "gw": "gw-1",
        "seq": 1,
        "readings": [
            {**common, "dev": -(2**63) - 1},  # a required field: the reading is refused
            {**common, "dev": "m1", "sinr_db": 10**30},  # an optional measurement: dropped, reading kept
            {**common, "dev": "m2"},
        ],
    }
    out = decode_batch(msgspec.json.encode(doc), now_ms=now)
    assert [r.dev for r in out.readings] == ["m1", "m2"]
    assert [(r.index, r.reason, r.dropped) for r in out.rejected] == [
        (0, "out_of_range: dev: an integer beyond 64 bits", False),
        (1, "out_of_range: sinr_db: an integer beyond 64 bits", True),
    ]
