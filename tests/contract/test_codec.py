from __future__ import annotations

import gc
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import (
    Batch,
    Cellular,
    Command,
    Generic,
    Machine,
    PayloadError,
    Status,
    decode_batch,
    decode_message,
    encode,
    sniff,
)
from contract.codec import Encoding, encode_raw_batch
from contract.limits import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_BATCH
from tests.contract.strategies import NOW as STRATEGY_NOW
from tests.contract.strategies import batches

NOW = 1_790_000_000_000


def _batch_json(*readings: str, seq: int = 1) -> bytes:
    return f'{{"v":1,"gw":"gw-1","seq":{seq},"readings":[{",".join(readings)}]}}'.encode()


GOOD = f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","rsrp_dbm":-95}}'


def test_valid_batch_decodes_with_types_kept() -> None:
    machine = f'{{"kind":"machine","ts":{NOW},"dev":"cnc-1","state":"running","parts_total":10}}'
    out = decode_batch(_batch_json(GOOD, machine), now_ms=NOW)
    assert out.rejected == []
    cell, mach = out.readings
    assert isinstance(cell, Cellular) and cell.rsrp_dbm == -95.0 and isinstance(cell.rsrp_dbm, float)
    assert isinstance(mach, Machine) and mach.parts_total == 10 and isinstance(mach.parts_total, int)


def test_decoded_readings_are_left_to_reference_counting() -> None:
    """Readings hold no references that could form a cycle: the cycle collector never tracks
    them (``gc=False``), which makes decoding cheaper; their tags and values still decode."""
    tagged = f'{{"kind":"machine","ts":{NOW},"dev":"m1","tags":{{"line":"L1"}}}}'
    generic = f'{{"kind":"generic","ts":{NOW},"dev":"m1","f":{{"a":1.5,"b":"x"}}}}'
    out = decode_batch(_batch_json(GOOD, tagged, generic), now_ms=NOW)
    assert out.rejected == [] and len(out.readings) == 3
    assert not any(gc.is_tracked(r) for r in out.readings)
    assert out.readings[1].tags == {"line": "L1"} and out.readings[2].f == {"a": 1.5, "b": "x"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"6G"}}', "tech"),
        (f'{{"kind":"cellular","ts":{NOW},"dev":"m1","tech":"LTE"}}', "operator"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","rpm":3}}', "unknown field `rpm`"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"a/b"}}', "dev"),
        (f'{{"kind":"teleport","ts":{NOW},"dev":"m1"}}', "kind"),
        ('{"kind":"machine","ts":"yesterday","dev":"m1"}', "ts"),
        (f'{{"kind":"machine","ts":{NOW + 3_600_000},"dev":"m1"}}', "future"),
        (f'{{"kind":"machine","ts":{NOW - 40 * 86_400_000},"dev":"m1"}}', "older"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","lat":0,"lon":0}}', "0,0"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","lat":20.8}}', "together"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","lat":91,"lon":106}}', "lat"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","tags":{{"park":"x"}}}}', "clashes"),
        (f'{{"kind":"machine","ts":{NOW},"dev":"m1","tags":{{"state":"x"}}}}', "clashes"),
        (f'{{"kind":"generic","ts":{NOW},"dev":"m1","f":{{}}}}', "f"),
        (f'{{"kind":"generic","ts":{NOW},"dev":"m1","f":{{"Bad Name":1}}}}', "f"),
        ('"just a string"', "Expected `object`"),
    ],
)
def test_one_bad_reading_keeps_its_neighbours(reading: str, reason: str) -> None:
    out = decode_batch(_batch_json(GOOD, reading, GOOD.replace('"m1"', '"m2"')), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1", "m2"]
    assert len(out.rejected) == 1
    rej = out.rejected[0]
    assert rej.index == 1
    assert reason in rej.reason
    assert rej.raw
    assert not rej.dropped
    assert "readings[" not in rej.reason


@pytest.mark.parametrize(
    ("reading", "reason", "key", "kept"),
    [
        (
            f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","rsrp_dbm":-95,"sinr_db":41.0}}',
            "out_of_range: sinr_db=41.0 > 40",
            "out_of_range:sinr_db",
            {"rsrp_dbm": -95.0, "sinr_db": None},
        ),
        (
            f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","rsrp_dbm":-200,"pci":7}}',
            "out_of_range: rsrp_dbm=-200 < -156",
            "out_of_range:rsrp_dbm",
            {"rsrp_dbm": None, "pci": 7},
        ),
        (
            f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","pci":"x","rsrp_dbm":-90}}',
            "wrong_type: pci",
            "wrong_type:pci",
            {"pci": None, "rsrp_dbm": -90.0},
        ),
        (
            f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","band":"X9","rsrp_dbm":-90}}',
            "malformed: band='X9'",
            "malformed:band",
            {"band": None, "rsrp_dbm": -90.0},
        ),
        (
            f'{{"kind":"machine","ts":{NOW},"dev":"m1","state":"runing","parts_total":3}}',
            "invalid_value: state='runing'",
            "invalid_value:state",
            {"state": None, "parts_total": 3},
        ),
        (
            f'{{"kind":"machine","ts":{NOW},"dev":"m1","parts_total":1.5,"state":"idle"}}',
            "wrong_type: parts_total",
            "wrong_type:parts_total",
            {"state": "idle", "parts_total": None},
        ),
        (
            f'{{"kind":"environment","ts":{NOW},"dev":"m1","temp_c":1e999,"humidity_pct":40}}',
            "out_of_range: temp_c=inf > 100",
            "out_of_range:temp_c",
            {"temp_c": None, "humidity_pct": 40.0},
        ),
    ],
)
def test_a_bad_optional_field_is_dropped_and_the_reading_kept(
    reading: str, reason: str, key: str, kept: dict[str, object]
) -> None:
    out = decode_batch(_batch_json(GOOD, reading), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1", "m1"]
    (rej,) = out.rejected
    assert (rej.index, rej.dropped, rej.key) == (1, True, key)
    assert rej.reason.startswith(reason)
    for name, value in kept.items():
        assert getattr(out.readings[1], name) == value


def test_two_bad_fields_are_both_dropped() -> None:
    reading = (
        f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"LTE","rsrp_dbm":-95,'
        '"sinr_db":41,"rsrq_db":99}'
    )
    out = decode_batch(_batch_json(reading), now_ms=NOW)
    (cell,) = out.readings
    assert isinstance(cell, Cellular) and cell.rsrp_dbm == -95.0
    assert sorted(r.key for r in out.rejected) == ["out_of_range:rsrq_db", "out_of_range:sinr_db"]


@pytest.mark.parametrize(
    ("spelt", "tech"),
    [("lte", "LTE"), ("Lte", "LTE"), ("5g", "NR"), ("nr", "NR"), ("3G", "UMTS"), ("gsm", "GSM")],
)
def test_technology_is_normalised(spelt: str, tech: str) -> None:
    reading = f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"{spelt}"}}'
    out = decode_batch(_batch_json(reading), now_ms=NOW)
    assert out.rejected == []
    (cell,) = out.readings
    assert isinstance(cell, Cellular) and cell.tech == tech


def test_a_bad_generic_field_name_refuses_the_reading_with_the_reason() -> None:
    reading = f'{{"kind":"generic","ts":{NOW},"dev":"m1","f":{{"x\\n":1.0}}}}'
    (rej,) = decode_batch(_batch_json(reading), now_ms=NOW).rejected
    assert (rej.key, rej.dropped) == ("malformed:f", False)
    assert "regex" in rej.reason and "(a key of f)" in rej.reason


def test_a_bad_required_field_still_refuses_the_reading() -> None:
    reading = f'{{"kind":"cellular","ts":{NOW},"dev":"m1","operator":"Op","tech":"6G","rsrp_dbm":-95}}'
    out = decode_batch(_batch_json(reading), now_ms=NOW)
    assert out.readings == []
    (rej,) = out.rejected
    assert (rej.key, rej.dropped) == ("invalid_value:tech", False)


def test_the_age_limit_is_a_parameter() -> None:
    old = f'{{"kind":"machine","ts":{NOW - 400 * 86_400_000},"dev":"m1"}}'
    assert decode_batch(_batch_json(old), now_ms=NOW).rejected[0].key == "too_old:ts"
    assert "(30 days)" in decode_batch(_batch_json(old), now_ms=NOW).rejected[0].reason
    assert len(decode_batch(_batch_json(old), now_ms=NOW, max_age_ms=None).readings) == 1
    assert decode_batch(_batch_json(old), now_ms=NOW, max_age_ms=86_400_000).readings == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"not json", "neither"),
        (b"[1,2]", "neither"),
        (b'{"v":1,"gw":"gw-1","seq":1,"readings":[', "truncated"),
        (b'{"v":2,"gw":"gw-1","seq":1,"readings":[{}]}', "v"),
        (b'{"v":1,"gw":"gw/1","seq":1,"readings":[{}]}', "gw"),
        (b'{"v":1,"gw":"gw-1","seq":-1,"readings":[{}]}', "seq"),
        (b'{"v":1,"gw":"gw-1","seq":1,"readings":[]}', "readings"),
        (b'{"v":1,"gw":"gw-1","seq":1}', "readings"),
        (b'{"v":1,"gw":"gw-1","seq":1,"readings":[{}],"x":1}', "unknown field"),
    ],
)
def test_broken_envelopes_are_rejected_whole(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_batch(payload, now_ms=NOW)


def test_nan_in_generic_msgpack_is_rejected() -> None:
    raw = msgspec.msgpack.encode(
        {
            "v": 1,
            "gw": "gw-1",
            "seq": 3,
            "readings": [
                {"kind": "generic", "ts": NOW, "dev": "d", "f": {"x": float("nan")}},
                {"kind": "generic", "ts": NOW, "dev": "d", "f": {"x": 1.0, "on": True, "mode": "eco"}},
                {"kind": "environment", "ts": NOW, "dev": "e", "temp_c": float("nan")},
            ],
        }
    )
    out = decode_batch(raw, now_ms=NOW)
    assert [(r.index, r.dropped) for r in out.rejected] == [(0, False), (2, True)]
    assert "finite" in out.rejected[0].reason
    assert out.rejected[1].key == "out_of_range:temp_c"
    ok, env = out.readings
    assert isinstance(ok, Generic) and ok.f == {"x": 1.0, "on": True, "mode": "eco"}
    assert env.dev == "e"


def test_size_and_count_limits() -> None:
    too_big = _batch_json(GOOD) + b" " * MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadError, match="exceeds"):
        decode_batch(too_big, now_ms=NOW)
    too_many = _batch_json(*([GOOD] * (MAX_READINGS_PER_BATCH + 1)))
    with pytest.raises(PayloadError, match="readings"):
        decode_batch(too_many, now_ms=NOW)


def test_msgpack_and_json_decode_alike_and_content_type_must_agree() -> None:
    batch = Batch(v=1, gw="g", seq=9, sent=NOW, readings=[Cellular(ts=NOW, dev="d", operator="o", tech="NR")])
    encodings: tuple[Encoding, ...] = ("json", "msgpack")
    for enc in encodings:
        payload = encode(batch, enc)
        assert sniff(payload) == enc
        out = decode_batch(payload, now_ms=NOW)
        assert (out.gw, out.seq, out.sent, out.readings) == ("g", 9, NOW, batch.readings)
    with pytest.raises(PayloadError, match="content type"):
        decode_batch(encode(batch), content_type="application/msgpack", now_ms=NOW)
    assert decode_batch(encode(batch), content_type="application/json; charset=utf-8", now_ms=NOW).seq == 9


def test_status_and_command_messages() -> None:
    lwt = decode_message(b'{"v":1,"gw":"gw-1","state":"offline"}', Status)
    assert lwt.state == "offline" and lwt.ts is None
    cmd = decode_message(encode(Command(v=1, cmd="flush", id="c1")), Command)
    assert cmd.cmd == "flush"
    with pytest.raises(PayloadError, match="state"):
        decode_message(b'{"v":1,"gw":"gw-1","state":"sleepy"}', Status)


def test_default_clock_is_now() -> None:
    now = int(time.time() * 1000)
    out = decode_batch(_batch_json(GOOD.replace(str(NOW), str(now))))
    assert len(out.readings) == 1


@settings(max_examples=60, deadline=None)
@given(batch=batches, sent_back_ms=st.integers(0, 60_000))
def test_a_batch_spliced_from_encoded_readings_decodes_as_the_batch_itself(
    batch: Batch, sent_back_ms: int
) -> None:
    sent_ms = STRATEGY_NOW - sent_back_ms
    bodies = [msgspec.json.encode(r) for r in batch.readings]
    payload = encode_raw_batch(gw=batch.gw, seq=batch.seq, sent_ms=sent_ms, readings=bodies)
    decoded = decode_batch(payload, now_ms=STRATEGY_NOW)
    assert decoded.rejected == []
    assert (decoded.gw, decoded.seq, decoded.sent) == (batch.gw, batch.seq, sent_ms)
    assert decoded.readings == batch.readings
    assert payload == encode(msgspec.structs.replace(batch, sent=sent_ms))


_DEV_REASON = "Expected `str` matching regex '^(?:[A-Za-z0-9][A-Za-z0-9_.\\\\-]{0,63})(?!\\\\n)$'"
"""msgspec's own words for a string outside the id pattern: the codec checks device ids itself
(once per distinct id) and must say the same."""


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("dev", ["a b", "m1\n", "-m1", "a/b", "m1\u2028", ""])
def test_bad_device_id_refuses_only_its_reading_with_msgspecs_reason(encoding: Encoding, dev: str) -> None:
    good = {"kind": "machine", "ts": NOW, "dev": "m1", "state": "idle"}
    # The bad reading also has a bad optional field: the id refuses it, nothing is dropped from it.
    bad = {"kind": "machine", "ts": NOW, "dev": dev, "spindle_temp_c": 999.0}
    body = {"v": 1, "gw": "gw-1", "seq": 1, "readings": [good, bad, {**good, "dev": "m2"}]}
    payload = msgspec.json.encode(body) if encoding == "json" else msgspec.msgpack.encode(body)
    for _ in range(2):  # the second time with the good ids known to the codec
        out = decode_batch(payload, now_ms=NOW)
        assert [r.dev for r in out.readings] == ["m1", "m2"]
        assert len(out.rejected) == 1
        rej = out.rejected[0]
        assert rej.index == 1 and not rej.dropped and rej.key == "malformed:dev"
        assert rej.reason == f"malformed: dev={dev!r}: {_DEV_REASON}"
        enc = msgspec.json.encode if encoding == "json" else msgspec.msgpack.encode
        assert rej.raw == enc(bad)  # the reading's own bytes


def test_bad_device_id_after_a_dropped_field_still_refuses_the_reading_alone() -> None:
    bad = f'{{"kind":"machine","ts":{NOW},"spindle_temp_c":999,"dev":"x y"}}'
    out = decode_batch(_batch_json(GOOD, bad), now_ms=NOW)
    assert [r.dev for r in out.readings] == ["m1"]
    assert [(r.index, r.key, r.dropped) for r in out.rejected] == [(1, "malformed:dev", False)]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("gw", ["a b", "gw-1\n", "-gw", "a/b", "gw\u2028", "", "g" * 65, "g" * 70])
def test_bad_envelope_gateway_id_refuses_the_batch_with_msgspecs_reason(encoding: Encoding, gw: str) -> None:
    """The codec matches the envelope's gateway id itself (once per distinct id): a batch whose
    id is outside the pattern or too long is refused as when the decoder checked it, with the
    decoder's own words, whether or not valid ids were seen before."""
    reading = {"kind": "machine", "ts": NOW, "dev": "m1", "state": "idle"}
    enc = msgspec.json.encode if encoding == "json" else msgspec.msgpack.encode
    bad = enc({"v": 1, "gw": gw, "seq": 1, "readings": [reading]})
    with pytest.raises(msgspec.ValidationError) as direct:
        (msgspec.json.decode if encoding == "json" else msgspec.msgpack.decode)(bad, type=Batch)
    for _ in range(2):  # the second time with "gw-1" (and "m1") known to the codec
        with pytest.raises(PayloadError) as refused:
            decode_batch(bad, now_ms=NOW)
        assert refused.value.reason == str(direct.value)
        assert (
            decode_batch(enc({"v": 1, "gw": "gw-1", "seq": 1, "readings": [reading]}), now_ms=NOW).gw
            == "gw-1"
        )


def test_a_bad_gateway_id_and_a_bad_reading_refuse_the_batch_for_the_id() -> None:
    bad_reading = f'{{"kind":"machine","ts":{NOW},"dev":"m1","spindle_temp_c":999}}'
    payload = _batch_json(GOOD, bad_reading).replace(b'"gw-1"', b'"g w"')
    with pytest.raises(PayloadError, match=r"Expected `str` matching regex .* - at `\$\.gw`"):
        decode_batch(payload, now_ms=NOW)


@pytest.mark.parametrize("lead", [b" ", b"\n\t", b"\r\n  "])
def test_json_after_white_space_and_content_types_still_go_through_sniff(lead: bytes) -> None:
    """The first byte decides the common cases; white space first, or a content type, takes
    sniff()'s path with its checks and reasons."""
    payload = _batch_json(GOOD)
    assert decode_batch(lead + payload, now_ms=NOW).readings == decode_batch(payload, now_ms=NOW).readings
    assert decode_batch(payload, content_type="application/json", now_ms=NOW).seq == 1
    with pytest.raises(
        PayloadError, match="content type 'application/msgpack' does not match a json payload"
    ):
        decode_batch(lead + payload, content_type="application/msgpack", now_ms=NOW)
    with pytest.raises(PayloadError, match=r"empty payload\Z"):
        decode_batch(b"", now_ms=NOW)
    for first in (b"[", b"\x90", b"\xc0", b"\x00", b"x"):
        with pytest.raises(PayloadError, match="neither a JSON object nor a MessagePack map"):
            decode_batch(first + payload, now_ms=NOW)


@pytest.mark.parametrize("first", [0x7B, *range(0x80, 0x90), 0xDE, 0xDF])
def test_the_first_byte_table_agrees_with_sniff(first: int) -> None:
    from contract.codec import _BY_FIRST_BYTE

    assert _BY_FIRST_BYTE[first] == sniff(bytes([first]) + b"\x00")
    assert len(_BY_FIRST_BYTE) == 19


def test_a_decoded_batch_is_immutable_and_compares_by_value() -> None:
    out = decode_batch(_batch_json(GOOD), now_ms=NOW)
    with pytest.raises(AttributeError):
        out.seq = 2  # type: ignore[misc]
    assert out == decode_batch(_batch_json(GOOD), now_ms=NOW)
    assert out != decode_batch(_batch_json(GOOD, seq=2), now_ms=NOW)
