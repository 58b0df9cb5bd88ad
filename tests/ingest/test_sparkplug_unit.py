"""Sparkplug B decoding, sessions (aliases, seq), mapping and the host's handling: no broker."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.readings import Energy, Generic, Machine
from ingest.model import WriteBatch
from ingest.service import Ingester
from ingest.sparkplug.errors import SparkplugError
from ingest.sparkplug.host import SparkplugHost
from ingest.sparkplug.mapping import Mapper, Sample, field_name
from ingest.sparkplug.payload import REBIRTH_METRIC, decode, metric_value
from ingest.sparkplug.rebirth import Rebirths
from ingest.sparkplug.session import MetricDef, NodeSession
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload
from ingest.sparkplug.topics import SparkplugTopic, StateTopic, parse_topic
from storage.ledger_snapshot import LedgerSnapshot
from tests.fakes import FakeSink
from tests.ingest.sparkplug_helpers import (
    GROUP,
    NODE,
    FakeMqtt,
    dbirth,
    message,
    metric,
    nbirth,
    payload,
    sparkplug_settings,
    topic,
)

# -- values --


@pytest.mark.parametrize(
    ("datatype", "setter", "raw", "expected"),
    [
        (DataType.Int8, "int_value", 0xFFFFFFFF, -1),  # sign-extended to 32 bits (spec)
        (DataType.Int8, "int_value", 0xFF, -1),  # masked to 8 bits (some encoders)
        (DataType.Int8, "int_value", 127, 127),
        (DataType.Int16, "int_value", 0xFFFF, -1),
        (DataType.Int16, "int_value", 0xFFFFFF85, -123),
        (DataType.Int32, "int_value", 2**32 - 5, -5),
        (DataType.Int64, "long_value", 2**64 - 1, -1),
        (DataType.UInt32, "int_value", 2**32 - 1, 2**32 - 1),
        (DataType.UInt32, "long_value", 70_000, 70_000),  # Tahu's JavaScript encoder uses long_value
        (DataType.UInt64, "long_value", 2**63, 2**63),
        (DataType.DateTime, "long_value", 1_700_000_000_000, 1_700_000_000_000),
        (DataType.Float, "float_value", 2.5, 2.5),
        (DataType.Double, "double_value", -0.125, -0.125),
        (DataType.Boolean, "boolean_value", True, True),
        (DataType.String, "string_value", "running", "running"),
        (DataType.Text, "string_value", "a note", "a note"),
    ],
)
def test_metric_values_by_datatype(datatype: int, setter: str, raw: Any, expected: Any) -> None:
    m = Payload.Metric(datatype=datatype)
    setattr(m, setter, raw)
    assert metric_value(m, datatype) == expected


def test_null_and_unsupported_values() -> None:
    assert (
        metric_value(
            Payload.Metric(datatype=DataType.Double, is_null=True, double_value=1.0), DataType.Double
        )
        is None
    )
    ds = Payload.Metric(datatype=DataType.DataSet)
    ds.dataset_value.num_of_columns = 1
    with pytest.raises(SparkplugError) as err:
        metric_value(ds, DataType.DataSet)
    assert err.value.key == "sparkplug_unsupported_datatype" and "DataSet" in err.value.reason
    with pytest.raises(SparkplugError) as err:
        metric_value(Payload.Metric(datatype=DataType.Double, double_value=float("nan")), DataType.Double)
    assert err.value.key == "sparkplug_not_finite"
    with pytest.raises(SparkplugError) as err:
        metric_value(Payload.Metric(datatype=DataType.Int32, string_value="12"), DataType.Int32)
    assert err.value.key == "sparkplug_wrong_value_field"


def test_malformed_protobuf_is_an_error_with_a_reason() -> None:
    with pytest.raises(SparkplugError) as err:
        decode(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert err.value.key == "sparkplug_malformed"
    assert "malformed Sparkplug B protobuf" in err.value.reason


# -- topics --


def test_topics_parse_and_refuse() -> None:
    assert parse_topic("spBv1.0/g/DDATA/n/d") == SparkplugTopic("g", "DDATA", "n", "d")
    assert parse_topic("spBv1.0/g/NBIRTH/n") == SparkplugTopic("g", "NBIRTH", "n")
    assert parse_topic("spBv1.0/STATE/host-1") == StateTopic("host-1")
    for bad in (
        "spBv1.0/g/NDATA/n/d",
        "spBv1.0/g/DDATA/n",
        "spBv1.0/g/XDATA/n",
        "spAv1.0/g/NDATA/n",
        "spBv1.0/g/NDATA/ ",
    ):
        with pytest.raises(SparkplugError):
            parse_topic(bad)


# -- sessions --


def test_seq_wraps_at_256_and_counts_gaps_and_duplicates() -> None:
    s = NodeSession()
    assert s.step(5).step == "unborn"
    assert s.birth(0, bd_seq=3).ext_seq == 0
    steps = [s.step(n) for n in range(1, 256)]
    assert all(r.step == "next" for r in steps) and steps[-1].ext_seq == 255
    wrapped = s.step(0)
    assert (wrapped.step, wrapped.ext_seq) == ("next", 256)
    assert (s.step(1).step, s.step(1).step) == ("next", "duplicate")
    gap = s.step(4)
    assert (gap.step, gap.missing, gap.ext_seq) == ("gap", 2, 260)
    across = s.step(253)  # 4 → 253 going forwards
    s.step(254)
    s.step(255)
    over = s.step(2)  # 255 → 2: 0 and 1 lost across the wrap
    assert across.missing == 248 and (over.step, over.missing) == ("gap", 2)
    rebirth = s.birth(0, bd_seq=4)
    assert rebirth.step == "next" and rebirth.ext_seq == over.ext_seq + 1


def test_aliases_are_per_node_and_births_replace_them() -> None:
    s = NodeSession()
    s.birth(0, None)
    temp = MetricDef("Temp", DataType.Double)
    assert s.define("", 1, temp) == ""
    assert "already 'Temp'" in s.define("dev", 1, MetricDef("Other", DataType.Int32))
    assert s.resolve("", "", 1) == temp
    assert s.resolve("", "Temp", None) == temp
    assert s.resolve("dev", "", 1) is None  # alias 1 is the node's, not the device's
    s.device_birth("dev")
    s.define("dev", 2, MetricDef("Speed", DataType.Int32))
    s.device_birth("dev")  # a new DBIRTH forgets the device's old metrics
    assert s.resolve("dev", "", 2) is None
    assert s.death() == {"dev"} and not s.born


# -- mapping --


def test_field_names_from_metric_names() -> None:
    assert field_name("Motor/Temp C") == "motor_temp_c"
    assert field_name("Oil Level %") == "oil_level"
    assert field_name("2nd Shift") == "m_2nd_shift"
    assert field_name("///") == "value"
    assert len(field_name("x" * 200)) == 64


def test_rules_scale_group_and_fall_back_to_generic() -> None:
    mapper = Mapper(sparkplug_settings(tmp=Path("/nonexistent")).sparkplug.nodes)
    mapping = mapper.find(GROUP, NODE)
    assert mapping is not None and mapper.find(GROUP, "other") is None
    assert mapper.find("plant-b", "any-node") is not None  # the group's "+" entry
    readings = mapping.readings(
        [
            Sample("m1", "Spindle/Temperature", 415, 1000),
            Sample("m1", "State", "running", 1000),
            Sample("m2", "State Code", 0, 1000),
            Sample("meter-1", "Power W", 7500, 1000),
            Sample("meter-2", "Power W", 7500, 1000),  # the rule names meter-1 only
            Sample("m1", "Power", 3.0, 1000, unit="W"),  # the birth says W, the rule kW
            *[Sample("m1", f"Aux {i}", i, 2000) for i in range(40)],
        ]
    )
    assert readings[0] == {
        "kind": "machine",
        "ts": 1000,
        "dev": "m1",
        "spindle_temp_c": 41.5,
        "state": "running",
    }
    assert readings[1] == {"kind": "machine", "ts": 1000, "dev": "m2", "state": "off"}
    assert readings[2] == {"kind": "energy", "ts": 1000, "dev": "meter-1", "power_kw": 7.5}
    generic = [r for r in readings if r["kind"] == "generic"]
    assert {"dev": "meter-2", "f": {"power_w": 7500}}.items() <= generic[0].items()
    assert generic[1]["f"] == {"power": 3.0}
    assert [len(g["f"]) for g in generic[2:]] == [32, 8]


# -- the host in the ingester --


def _host(tmp_path: Path, **kw: Any) -> tuple[Ingester, SparkplugHost, FakeMqtt]:
    ing = Ingester(sparkplug_settings(tmp=tmp_path, **kw), sink=FakeSink())
    assert ing.sparkplug is not None
    fake = FakeMqtt()
    ing.sparkplug.bind(fake.publish, fake.set_will)
    return ing, ing.sparkplug, fake


def _readings(out: WriteBatch) -> list[Any]:
    return [r for p in out.parts for r in p.readings]


def _is_rebirth(body: bytes) -> bool:
    p = Payload()
    p.ParseFromString(body)
    return [(m.name, m.datatype, m.boolean_value) for m in p.metrics] == [
        (REBIRTH_METRIC, DataType.Boolean, True)
    ]


def test_births_and_data_become_mapped_and_generic_readings(tmp_path: Path) -> None:
    ing, _, fake = _host(tmp_path)
    out = WriteBatch()
    assert ing.handle(message(topic("NBIRTH"), nbirth()), out) == 1  # Uptime; bdSeq and controls not stored
    assert [s.status.state for s in out.statuses] == ["online"] and out.statuses[0].gw == "sp-line1"
    assert ing.handle(message(topic("DBIRTH", "m1"), dbirth(1)), out) == 3
    ts = int(time.time() * 1000) - 5_000
    data = payload(
        [
            metric("", 420, DataType.Int16, alias=10, ts_ms=ts),
            metric("", "idle", DataType.String, alias=11, ts_ms=ts),
        ],
        seq=2,
    )
    out2 = WriteBatch()
    assert ing.handle(message(topic("DDATA", "m1"), data), out2) == 1
    assert not out.dead_letters and not out2.dead_letters and not fake.published
    (m,) = _readings(out2)
    assert isinstance(m, Machine) and (m.dev, m.ts, m.spindle_temp_c, m.state) == ("m1", ts, 42.0, "idle")
    birth = _readings(out)
    assert any(isinstance(r, Energy) and r.power_kw == 7.5 for r in birth)
    generic = [r for r in birth if isinstance(r, Generic)]
    assert {(r.dev, k, v) for r in generic for k, v in r.f.items()} == {
        ("line1-plc", "uptime", 12),
        ("m1", "oil_level", 80.5),
        ("m1", "online", True),
    }
    assert {(p.park, p.gw) for p in out.parts} == {("hp-a", "sp-line1")}
    assert ing.ledger.totals()["received"]["sp-line1"] == 3


def test_unknown_alias_dead_letters_the_metric_and_requests_a_rate_limited_rebirth(tmp_path: Path) -> None:
    ing, host, fake = _host(tmp_path, rebirth_interval_s=60.0)
    ing.handle(message(topic("NBIRTH"), nbirth()), WriteBatch())
    out = WriteBatch()
    body = payload([metric("", 1.0, alias=99), metric("", 13, DataType.Int32, alias=1)], seq=1)
    assert ing.handle(message(topic("NDATA"), body), out) == 1  # the known alias is kept
    (dead,) = out.dead_letters
    assert dead.reason == "alias 99 is not in the birth certificate; a rebirth was requested"
    ncmd = fake.on(f"spBv1.0/{GROUP}/NCMD/{NODE}")
    assert len(ncmd) == 1 and _is_rebirth(ncmd[0])
    assert [(q, r) for t, _, q, r in fake.published] == [(0, False)]
    ing.handle(message(topic("NDATA"), payload([metric("", 1.0, alias=98)], seq=2)), WriteBatch())
    assert len(fake.on(f"spBv1.0/{GROUP}/NCMD/{NODE}")) == 1  # within the interval: suppressed
    assert ing.metrics.sparkplug["rebirth_suppressed"] == 1
    assert host.rebirth.sent == [(GROUP, NODE, "unknown alias 99")]


def test_rebirth_requests_are_rate_limited_per_node() -> None:
    clock = [100.0]
    events: Counter[str] = Counter()
    fake = FakeMqtt()
    rebirths = Rebirths(5.0, events, lambda: 1_000, lambda: clock[0])
    assert not rebirths.request("g", "n1", "before bind")  # not connected to a client yet
    rebirths.bind(fake.publish)
    assert rebirths.request("g", "n1", "gap")
    assert not rebirths.request("g", "n1", "gap again")
    assert rebirths.request("g", "n2", "another node")
    clock[0] += 4.9
    assert not rebirths.request("g", "n1", "still too soon")
    clock[0] += 0.1
    assert rebirths.request("g", "n1", "interval passed")
    assert [t for t, *_ in fake.published] == ["spBv1.0/g/NCMD/n1", "spBv1.0/g/NCMD/n2", "spBv1.0/g/NCMD/n1"]
    assert events == Counter({"rebirth_requested": 3, "rebirth_suppressed": 2})


def test_a_seq_gap_feeds_the_ledger_and_requests_a_rebirth(tmp_path: Path) -> None:
    ing, _, fake = _host(tmp_path)
    ing.handle(message(topic("NBIRTH"), nbirth()), WriteBatch())
    ing.handle(
        message(topic("NDATA"), payload([metric("", 1, DataType.Int32, alias=1)], seq=1)), WriteBatch()
    )
    ing.handle(
        message(topic("NDATA"), payload([metric("", 2, DataType.Int32, alias=1)], seq=5)), WriteBatch()
    )
    out = WriteBatch()
    ing.handle(message(topic("NDATA"), payload([metric("", 2, DataType.Int32, alias=1)], seq=5)), out)
    totals = ing.ledger.totals()
    assert (totals["received"]["sp-line1"], totals["missing"]["sp-line1"]) == (3, 3)
    assert totals["duplicated"]["sp-line1"] == 1 and out.parts[0].replay
    assert len(fake.on(f"spBv1.0/{GROUP}/NCMD/{NODE}")) == 1


def test_data_before_birth_is_dead_lettered_and_asks_for_a_birth(tmp_path: Path) -> None:
    ing, _, fake = _host(tmp_path)
    out = WriteBatch()
    assert (
        ing.handle(message(topic("NDATA"), payload([metric("Uptime", 1, DataType.Int32)], seq=7)), out) == 0
    )
    assert "before its NBIRTH" in out.dead_letters[0].reason
    assert len(fake.on(f"spBv1.0/{GROUP}/NCMD/{NODE}")) == 1


def test_malformed_unmapped_and_bad_seq_are_dead_letters_not_crashes(tmp_path: Path) -> None:
    ing, _, _ = _host(tmp_path)
    out = WriteBatch()
    ing.handle(message(topic("NBIRTH"), b"\xff\xff\xff"), out)
    ing.handle(message(topic("NBIRTH", node="stranger"), nbirth()), out)
    ing.handle(message(topic("NBIRTH"), payload([], seq=None)), out)
    ing.handle(message("spBv1.0/g/BOGUS/n", b""), out)
    reasons = [d.reason for d in out.dead_letters]
    assert reasons[0].startswith("malformed Sparkplug B protobuf")
    assert reasons[1].startswith(f"sparkplug edge node {GROUP}/stranger is not mapped to a park")
    assert reasons[2] == "seq must be 0-255 (got none)"
    assert "does not match spBv1.0/<group>/<message type>" in reasons[3]
    assert ing.metrics.dead_letter_reasons["sparkplug_malformed"] == 1
    assert not out.parts


def test_deaths_mark_offline_and_a_stale_bdseq_is_ignored(tmp_path: Path) -> None:
    ing, _, _ = _host(tmp_path)
    ing.handle(message(topic("NBIRTH"), nbirth(bd_seq=7)), WriteBatch())
    ing.handle(message(topic("DBIRTH", "m1"), dbirth(1)), WriteBatch())
    ing.handle(message(topic("DBIRTH", "m2"), dbirth(2)), WriteBatch())
    out = WriteBatch()
    ing.handle(message(topic("DDEATH", "m2"), payload([], seq=3)), out)
    assert [(r.dev, r.f) for r in _readings(out)] == [("m2", {"online": False})]
    stale = WriteBatch()
    ing.handle(message(topic("NDEATH"), payload([metric("bdSeq", 6, DataType.UInt64)], seq=None)), stale)
    assert stale.is_empty() and ing.metrics.sparkplug["stale_death"] == 1
    dead = WriteBatch()
    ing.handle(message(topic("NDEATH"), payload([metric("bdSeq", 7, DataType.UInt64)], seq=None)), dead)
    assert [(s.gw, s.status.state) for s in dead.statuses] == [("sp-line1", "offline")]
    assert [(r.dev, r.f) for r in _readings(dead)] == [("m1", {"online": False})]


def test_state_birth_and_will_share_a_timestamp_that_grows_per_connection(tmp_path: Path) -> None:
    ing, host, fake = _host(tmp_path, host_id="pw-host")
    will_topic, first_will = host.will()
    assert will_topic == "spBv1.0/STATE/pw-host"
    host.on_connected()
    (body,) = fake.on("spBv1.0/STATE/pw-host")
    online, will = json.loads(body), json.loads(first_will)
    assert online["online"] is True and will["online"] is False and online["timestamp"] == will["timestamp"]
    assert fake.published[0][2:] == (1, True)  # QoS 1, retained
    next_will = json.loads(fake.wills[-1][1])
    assert next_will["timestamp"] > will["timestamp"]
    host.on_connected()
    assert json.loads(fake.on("spBv1.0/STATE/pw-host")[1])["timestamp"] == next_will["timestamp"]
    assert host.publish_offline()
    assert json.loads(fake.on("spBv1.0/STATE/pw-host")[2]) == {
        "online": False,
        "timestamp": next_will["timestamp"],
    }
    ignored = WriteBatch()
    assert ing.handle(message("spBv1.0/STATE/pw-host", fake.on("spBv1.0/STATE/pw-host")[0]), ignored) == 0
    assert ignored.is_empty()


def test_the_sample_config_loads_and_maps_a_plc_state_code() -> None:
    from settings import load_settings
    from settings.ingest import IngestSettings

    sample = Path(__file__).resolve().parents[2] / "config" / "sparkplug.toml"
    settings = load_settings(IngestSettings, sample, env={})
    assert settings.sparkplug.enabled and settings.sparkplug.host_id == "parkwatch-hp"
    mapper = Mapper(settings.sparkplug.nodes)
    line = mapper.find("deepc-factory-7", "ignition-line1")
    utilities = mapper.find("nomura-utilities", "boiler-house")
    assert line is not None and utilities is not None
    assert (utilities.park, utilities.gateway) == ("hp-nomura", "boiler-house")
    assert line.readings(
        [Sample("CNC-07", "Status/Code", 2, 5), Sample("MainMeter", "Energy/Active Power", 1500, 5)]
    ) == [
        {"kind": "machine", "ts": 5, "dev": "CNC-07", "state": "running"},
        {"kind": "energy", "ts": 5, "dev": "MainMeter", "power_kw": 1.5},
    ]


def test_refuse_unknown_parks_applies_to_sparkplug_nodes(tmp_path: Path) -> None:
    ing = Ingester(sparkplug_settings(tmp=tmp_path, refuse_unknown_parks=True), sink=FakeSink())
    ing.known_parks = frozenset({"hp-b"})
    out = WriteBatch()
    assert ing.handle(message(topic("NBIRTH"), nbirth()), out) == 0
    assert out.dead_letters[0].reason.startswith("unknown_park: park 'hp-a' is not in the registry")
    assert ing.handle(message(topic("NBIRTH", group="plant-b", node="boiler"), nbirth()), out) == 1


_VALUE_FIELDS = (
    "int_value",
    "long_value",
    "float_value",
    "double_value",
    "boolean_value",
    "string_value",
    "bytes_value",
)
_RAW = {
    "int_value": st.integers(0, 2**32 - 1),
    "long_value": st.integers(0, 2**64 - 1),
    "float_value": st.floats(width=32),
    "double_value": st.floats(),
    "boolean_value": st.booleans(),
    "string_value": st.text(max_size=40),
    "bytes_value": st.binary(max_size=20),
}


@st.composite
def _metrics(draw: st.DrawFn) -> Payload.Metric:
    m = Payload.Metric()
    if draw(st.booleans()):
        m.name = draw(st.sampled_from(["Uptime", "State", "Spindle/Temperature", "x", ""]))
    if draw(st.booleans()):
        m.alias = draw(st.integers(0, 20))
    if draw(st.booleans()):
        m.datatype = draw(st.integers(0, 40))
    if draw(st.booleans()):
        m.timestamp = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        name = draw(st.sampled_from(_VALUE_FIELDS))
        setattr(m, name, draw(_RAW[name]))
    m.is_null = draw(st.booleans())
    return m


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(
        st.sampled_from(["NBIRTH", "DBIRTH", "NDATA", "DDATA", "DDEATH", "NDEATH"]), min_size=1, max_size=6
    ),
    bodies=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.builds(
                lambda ms, seq, ts: payload(ms, seq=seq, ts_ms=ts),
                st.lists(_metrics(), max_size=6),
                st.one_of(st.none(), st.integers(0, 300)),
                st.integers(0, 2**64 - 1),
            ),
        ),
        min_size=6,
        max_size=6,
    ),
)
def test_any_sequence_of_any_payloads_is_stored_or_dead_lettered_never_raises(
    tmp_path: Path, kinds: list[str], bodies: list[bytes]
) -> None:
    ing, _, _ = _host(tmp_path)
    out = WriteBatch()
    for kind, body in zip(kinds, bodies, strict=False):
        device = "m1" if kind.startswith("D") else ""
        n = ing.handle(message(topic(kind, device), body), out)
        assert n >= 0
    for dead in out.dead_letters:
        assert dead.reason
    for status in out.statuses:  # built here, not by the contract decoder: within its clock window
        assert abs(status.ts_ms - time.time() * 1000) <= 30 * 86_400_000


def test_a_birth_stamped_far_in_the_future_gets_a_status_at_receipt_and_dead_letters(tmp_path: Path) -> None:
    ing, _, _ = _host(tmp_path)
    out = WriteBatch()
    msg = message(
        topic("NBIRTH"), payload([metric("Uptime", 1, DataType.Int32, alias=1)], seq=0, ts_ms=2**64 - 1)
    )
    assert ing.handle(msg, out) == 0
    assert [(s.ts_ms, s.status.ts) for s in out.statuses] == [(msg.received_ms, msg.received_ms)]
    assert [d.reason.split(":")[0] for d in out.dead_letters] == ["out_of_range"]


def test_parkwatch_serve_passes_its_sparkplug_section_to_the_ingester() -> None:
    from settings.loader import settings_from_dict
    from settings.serve import ServeSettings

    serve = settings_from_dict(
        ServeSettings, {"sparkplug": {"enabled": True, "groups": ["plant-a"], "host_id": "pw-serve"}}
    )
    sp = serve.ingest_settings().sparkplug
    assert (sp.enabled, sp.groups, sp.host_id) == (True, ["plant-a"], "pw-serve")


def test_after_a_restart_the_ledger_numbering_continues_from_the_stored_snapshot(tmp_path: Path) -> None:
    first, _, _ = _host(tmp_path)
    for seq, body in enumerate([nbirth(), payload([metric("", 1, DataType.Int32, alias=1)], seq=1)]):
        first.handle(message(topic("NDATA" if seq else "NBIRTH"), body), WriteBatch())
    snapshots = [
        LedgerSnapshot(
            park=r.park, gw=r.gw, received=r.received, missing=r.missing, duplicated=r.duplicated,
            late=r.late, last_seq=r.last_seq, ingester=r.ingester, restarts=r.restarts,
        )
        for r in first.ledger.drain(0)
    ]  # fmt: skip
    second, _, _ = _host(tmp_path)
    second.ledger.load(snapshots)
    second.handle(message(topic("NBIRTH"), nbirth()), WriteBatch())
    second.handle(
        message(topic("NDATA"), payload([metric("", 2, DataType.Int32, alias=1)], seq=1)), WriteBatch()
    )
    totals = second.ledger.totals()
    assert (
        totals["received"]["sp-line1"],
        totals["duplicated"]["sp-line1"],
        totals["missing"]["sp-line1"],
    ) == (4, 0, 0)
