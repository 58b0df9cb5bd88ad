"""OPC UA node map settings and the pure value -> reading conversion, table-style."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from contract.readings import Environment, Generic, Machine
from edge_agent.collectors.opcua_values import ReadingAssembler, Sample, convert_value, to_epoch_ms
from edge_agent.opcua_browse import FoundVariable, device_id, field_name, propose
from settings.edge import EdgeSettings
from settings.edge_opcua import OpcuaNode
from settings.errors import ConfigError
from settings.loader import settings_from_dict

STATES = ["off", "idle", "running", "fault", "setup"]


def node(field: str, kind: str = "machine", device: str = "cnc-01", **kw: Any) -> OpcuaNode:
    return OpcuaNode(node_id=f"ns=2;s={device}.{field}", device=device, kind=kind, field=field, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (node("state", enum=STATES), 3, "fault"),
        (node("state"), "running", "running"),
        (node("spindle_temp_c", scale=0.1), 613, 61.3),
        (node("spindle_temp_c"), 61, 61.0),
        (node("parts_total"), 70000.0, 70000),
        (node("parts_total", scale=10.0), 7, 70),
        (node("flag", kind="generic"), True, True),
        (node("count", kind="generic"), 12, 12),
    ],
)
def test_convert_value(spec: OpcuaNode, raw: Any, expected: Any) -> None:
    value = convert_value(spec, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (node("state", enum=STATES), 7, "code 7 has no name"),
        (node("state", enum=STATES), "running", "expected an integer code"),
        (node("spindle_temp_c", scale=0.1), "hot", "cannot be scaled"),
        (node("spindle_temp_c"), [1.0, 2.0], "a list value cannot be a reading field"),
    ],
)
def test_convert_value_refuses(spec: OpcuaNode, raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        convert_value(spec, raw)


def test_to_epoch_ms_treats_the_opcua_zero_date_as_unset() -> None:
    import datetime as dt

    assert to_epoch_ms(None) is None
    assert to_epoch_ms(dt.datetime(1601, 1, 1)) is None
    assert to_epoch_ms(dt.datetime(2026, 1, 2, 3, 4, 5, 678000)) == 1767323045678
    assert to_epoch_ms(dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)) == 1767323045678


NODES = [
    node("state", enum=STATES),
    node("spindle_temp_c", scale=0.1),
    node("parts_total"),
    node("temp_c", "environment", "env-1"),
]


def assembler(**kw: Any) -> ReadingAssembler:
    return ReadingAssembler(
        NODES, timestamps=kw.pop("timestamps", "source"), report_period_s=kw.pop("report_period_s", 60.0)
    )


def test_one_reading_per_device_and_timestamp_each_a_full_snapshot() -> None:
    a = assembler()
    out = a.add(
        [
            Sample(0, 2, source_ms=1000),
            Sample(1, 600, source_ms=1000),
            Sample(3, 25.0, source_ms=1000),
            Sample(2, 5, source_ms=2000),
        ],
        now_ms=9999,
        now_s=0.0,
    )
    assert [(type(r).__name__, r.dev, r.ts) for r in out] == [
        ("Machine", "cnc-01", 1000),
        ("Environment", "env-1", 1000),
        ("Machine", "cnc-01", 2000),
    ]
    assert out[2] == Machine(ts=2000, dev="cnc-01", state="running", spindle_temp_c=60.0, parts_total=5)
    assert out[1] == Environment(ts=1000, dev="env-1", temp_c=25.0)


def test_initial_values_make_one_snapshot_at_the_newest_timestamp() -> None:
    a = assembler()
    out = a.add(
        [Sample(0, 2, source_ms=1000), Sample(2, 5, source_ms=5000)], initial=True, now_ms=9999, now_s=0.0
    )
    assert out == [Machine(ts=5000, dev="cnc-01", state="running", parts_total=5)]


@pytest.mark.parametrize(("timestamps", "expected"), [("source", 1000), ("server", 1500), ("gateway", 9999)])
def test_timestamp_choice(timestamps: str, expected: int) -> None:
    a = assembler(timestamps=timestamps)
    out = a.add([Sample(2, 5, source_ms=1000, server_ms=1500)], now_ms=9999, now_s=0.0)
    assert [r.ts for r in out] == [expected]


def test_missing_source_timestamp_falls_back_to_the_server_then_the_gateway() -> None:
    a = assembler()
    out = a.add([Sample(2, 5, server_ms=1500), Sample(3, 20.0)], now_ms=9999, now_s=0.0)
    assert sorted(r.ts for r in out) == [1500, 9999]


def test_a_bad_status_removes_the_field_and_out_of_range_values_are_dropped_alone() -> None:
    a = assembler()
    a.add([Sample(0, 2, source_ms=1000), Sample(1, 600, source_ms=1000)], now_ms=9999, now_s=0.0)
    out = a.add(
        [
            Sample(1, None, good=False, status="BadCommunicationError", source_ms=2000),
            Sample(0, 9, source_ms=2000),
        ],
        now_ms=9999,
        now_s=0.0,
    )
    # Both fields are unknown now: no reading rather than stale values.
    assert out == []
    out = a.add([Sample(0, 3, source_ms=3000), Sample(1, 9000, source_ms=3000)], now_ms=9999, now_s=0.0)
    # 900.0 °C is outside the contract's spindle range: the state still goes through.
    assert out == [Machine(ts=3000, dev="cnc-01", state="fault")]
    reasons = [p.reason for p in a.problems]
    assert reasons[0] == "status BadCommunicationError"
    assert "code 9 has no name" in reasons[1]
    assert "out of the contract's range" in reasons[2] and "spindle_temp_c" in reasons[2]


def test_heartbeat_repeats_an_unchanged_device_with_the_gateway_clock() -> None:
    a = assembler(report_period_s=10.0)
    a.add([Sample(2, 5, source_ms=1000)], now_ms=1000, now_s=0.0)
    assert a.heartbeat(now_ms=5000, now_s=5.0) == []
    assert a.heartbeat(now_ms=11000, now_s=10.5) == [Machine(ts=11000, dev="cnc-01", parts_total=5)]
    assert a.heartbeat(now_ms=12000, now_s=11.0) == []


def test_generic_values_go_under_f() -> None:
    a = ReadingAssembler(
        [node("line_speed", kind="generic", device="conveyor")], timestamps="source", report_period_s=60.0
    )
    assert a.add([Sample(0, 1.5, source_ms=1000)], now_ms=0, now_s=0.0) == [
        Generic(ts=1000, dev="conveyor", f={"line_speed": 1.5})
    ]


BASE: dict[str, Any] = {"agent": {"park": "p1", "gateway": "gw-1"}}


def edge(collector: dict[str, Any]) -> EdgeSettings:
    return settings_from_dict(
        EdgeSettings, {**BASE, "collectors": [{"type": "opcua", **collector}]}, where="edge.toml"
    )


URL = "opc.tcp://10.0.0.5:4840"
GOOD_NODE = {"node_id": "ns=2;s=cnc-01.state", "device": "cnc-01", "kind": "machine", "field": "state"}


def test_a_valid_opcua_table_loads() -> None:
    s = edge(
        {
            "url": URL,
            "nodes": [
                GOOD_NODE,
                {
                    "browse_path": "2:Factory/2:cnc-01/2:Temp",
                    "device": "cnc-01",
                    "kind": "machine",
                    "field": "spindle_temp_c",
                    "deadband": 0.5,
                },
            ],
        }
    )
    (c,) = s.collectors
    assert c.__struct_config__.tag == "opcua" and len(c.nodes) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"url": "http://10.0.0.5:4840", "nodes": [GOOD_NODE]}, "url"),
        ({"url": URL, "nodes": []}, "nodes"),
        ({"url": URL, "nodes": [GOOD_NODE | {"node_id": "ns=2;x=bad"}]}, "is not a NodeId"),
        ({"url": URL, "nodes": [GOOD_NODE | {"node_id": "ns=2;s=a\n"}]}, "is not a NodeId"),
        ({"url": URL, "nodes": [GOOD_NODE | {"browse_path": "2:Factory"}]}, "exactly one of node_id"),
        (
            {"url": URL, "nodes": [{k: v for k, v in GOOD_NODE.items() if k != "node_id"}]},
            "exactly one of node_id",
        ),
        ({"url": URL, "nodes": [GOOD_NODE | {"field": "temp_c"}]}, "is not a machine field"),
        ({"url": URL, "nodes": [GOOD_NODE, GOOD_NODE]}, "mapped twice"),
        ({"url": URL, "nodes": [GOOD_NODE], "security_policy": "Basic256Sha256"}, "does not go with"),
        (
            {"url": URL, "nodes": [GOOD_NODE], "security_policy": "Basic256Sha256", "security_mode": "Sign"},
            "needs certificate and private_key",
        ),
        ({"url": URL, "nodes": [GOOD_NODE], "password": "Hai-Phong-2026"}, "password without a username"),
        ({"url": URL, "nodes": [GOOD_NODE], "username": "op", "password": "change-me"}, "placeholder"),
        ({"url": URL, "nodes": [GOOD_NODE], "security_mode": "Encrypt"}, "security_mode"),
    ],
)
def test_invalid_opcua_tables_name_the_problem(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        edge(table)
    assert "edge.toml" in str(err.value)


def test_browse_names_become_ids_and_kinds() -> None:
    assert device_id("Press 01") == "Press-01" and field_name("SpindleTemp") == "spindle_temp"
    found = [
        FoundVariable("ns=2;s=a", "2:Hall/2:cnc-01/2:state", "cnc-01", "state"),
        FoundVariable("ns=2;s=b", "2:Hall/2:cnc-01/2:spindle_temp_c", "cnc-01", "spindle_temp_c"),
        FoundVariable("ns=2;s=c", "2:Hall/2:cnc-01/2:OilLevel", "cnc-01", "OilLevel"),
        FoundVariable("ns=3;i=7", "3:MyObject/3:MyVariable", "MyObject", "MyVariable"),
    ]
    assert [(n.node_id, n.device, n.kind, n.field) for n in propose(found)] == [
        ("ns=2;s=a", "cnc-01", "machine", "state"),
        ("ns=2;s=b", "cnc-01", "machine", "spindle_temp_c"),
        ("ns=2;s=c", "cnc-01", "generic", "oil_level"),
        ("ns=3;i=7", "MyObject", "generic", "my_variable"),
    ]
    # The proposal is a valid node map as it is.
    assert len(edge({"url": URL, "nodes": [msgspec.to_builtins(n) for n in propose(found)]}).collectors) == 1


def test_the_opcua_sample_config_loads() -> None:
    from pathlib import Path

    from settings.edge_opcua import OpcuaCollector
    from settings.loader import load_settings

    s = load_settings(EdgeSettings, Path(__file__).parents[2] / "config" / "edge-opcua.toml", env={})
    (c,) = s.collectors
    assert isinstance(c, OpcuaCollector)
    assert (c.security_policy, c.security_mode, c.mode) == ("Basic256Sha256", "SignAndEncrypt", "subscribe")
    assert [(n.device, n.kind, n.field) for n in c.nodes][:2] == [
        ("press-02", "machine", "state"),
        ("press-02", "machine", "spindle_temp_c"),
    ]


def test_opcua_modules_import_no_server_module() -> None:
    import json
    import subprocess
    import sys

    from tests.edge_agent.test_boundary import SERVER_MODULES

    code = (
        "import json, sys, edge_agent.collectors.opcua, edge_agent.doctor_opcua, edge_agent.opcua_browse\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = json.loads(out.stdout)
    assert "asyncua" in loaded and [m for m in loaded if m.split(".")[0] in SERVER_MODULES] == []


def test_init_from_simulator_endpoints_writes_the_opcua_collector(tmp_path: Any) -> None:
    import tomllib

    from edge_agent.init_config import from_endpoints, render
    from firmware_sim.endpoints import DeviceEndpoint, GatewayEndpoints, OpcuaNodeEndpoint, SimEndpoints
    from settings.edge_opcua import OpcuaCollector

    nodes = [
        OpcuaNodeEndpoint(node_id=f"ns=2;s=smt-01.{f}", device="smt-01", kind="machine", field=f)
        for f in ("state", "parts_total")
    ]
    server = DeviceEndpoint(
        id="opcua",
        kind="opcua_server",
        host="127.0.0.1",
        port=4840,
        url="opc.tcp://127.0.0.1:4840/x",
        nodes=nodes,
    )
    ep = SimEndpoints(
        scenario="t",
        seed=1,
        speed=1.0,
        start_ms=0,
        gateways={
            "vsip-gw-01": GatewayEndpoints(park="vsip", lat=20.9, lon=106.7, mobile=False, devices=[server])
        },
    )
    path = tmp_path / "endpoints.json"
    path.write_bytes(ep.to_json())
    settings = settings_from_dict(EdgeSettings, tomllib.loads(render(from_endpoints(str(path), None))))
    (op,) = [c for c in settings.collectors if isinstance(c, OpcuaCollector)]
    assert op.url == "opc.tcp://127.0.0.1:4840/x" and op.mode == "subscribe"
    assert [(n.node_id, n.device, n.kind, n.field) for n in op.nodes] == [
        ("ns=2;s=smt-01.state", "smt-01", "machine", "state"),
        ("ns=2;s=smt-01.parts_total", "smt-01", "machine", "parts_total"),
    ]
