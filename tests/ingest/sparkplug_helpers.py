"""Helpers of the Sparkplug tests: payloads built with the committed schema, settings, a fake MQTT side."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.mqtt import Message
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload
from settings.ingest import IngestSettings
from settings.loader import settings_from_dict

GROUP = "plant-a"
NODE = "line1-plc"


def mapping(group: str = GROUP) -> list[dict[str, Any]]:
    """The edge node mapping of the tests, for one group (plus a ``+`` entry of ``plant-b``)."""
    return [
        {
            "group": group,
            "edge_node": NODE,
            "park": "hp-a",
            "gateway": "sp-line1",
            "metrics": [
                {"name": "Spindle/Temperature", "kind": "machine", "field": "spindle_temp_c", "scale": 0.1},
                {"name": "State", "kind": "machine", "field": "state"},
                {
                    "name": "State Code",
                    "kind": "machine",
                    "field": "state",
                    "values": {"0": "off", "2": "running"},
                },
                {"name": "Parts", "kind": "machine", "field": "parts_total"},
                {"name": "Power", "kind": "energy", "field": "power_kw", "unit": "kW"},
                {
                    "name": "Power W",
                    "kind": "energy",
                    "field": "power_kw",
                    "scale": 0.001,
                    "device": "meter-1",
                },
            ],
        },
        {"group": "plant-b", "edge_node": "+", "park": "hp-b"},
    ]


def sparkplug_settings(
    *,
    tmp: Path,
    broker_port: int = 1,
    root: str = "pwsp",
    client_id: str = "ing-sp",
    group: str = GROUP,
    refuse_unknown_parks: bool = False,
    **sparkplug: Any,
) -> IngestSettings:
    data = {
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "topic_root": root,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "protocol": "5",
        },
        "sink": {"type": "duckdb", "path": str(tmp / "store.duckdb")},
        "ingest": {
            "client_id": client_id,
            "spool_dir": str(tmp / f"spool-{client_id}"),
            "metrics_enabled": False,
            "flush_interval_s": 0.05,
            "retry_min_s": 0.1,
            "retry_max_s": 0.5,
            "refuse_unknown": "parks" if refuse_unknown_parks else "none",
        },
        "sparkplug": {"enabled": True, "nodes": mapping(group), **sparkplug},
    }
    return settings_from_dict(IngestSettings, data)


def metric(
    name: str = "",
    value: Any = None,
    datatype: int = DataType.Double,
    *,
    alias: int | None = None,
    ts_ms: int | None = None,
    unit: str = "",
) -> Payload.Metric:
    m = Payload.Metric()
    if name:
        m.name = name
    if alias is not None:
        m.alias = alias
    if ts_ms is not None:
        m.timestamp = ts_ms
    m.datatype = datatype
    if unit:
        m.properties.keys.append("engUnit")
        m.properties.values.add(type=DataType.String, string_value=unit)
    if value is None:
        m.is_null = True
    elif isinstance(value, bool):
        m.boolean_value = value
    elif isinstance(value, str):
        m.string_value = value
    elif datatype in (DataType.Float,):
        m.float_value = value
    elif datatype == DataType.Double:
        m.double_value = value
    elif datatype in (DataType.Int64, DataType.UInt64, DataType.DateTime):
        m.long_value = value % (1 << 64)
    else:
        m.int_value = value % (1 << 32)
    return m


def payload(metrics: list[Payload.Metric], *, seq: int | None, ts_ms: int | None = None) -> bytes:
    p = Payload(timestamp=ts_ms if ts_ms is not None else int(time.time() * 1000))
    if seq is not None:
        p.seq = seq
    p.metrics.extend(metrics)
    return bytes(p.SerializeToString())


def message(topic: str, body: bytes, *, dup: bool = False) -> Message:
    return Message(
        topic=topic,
        payload=body,
        received_ms=int(time.time() * 1000),
        content_type=None,
        mid=1,
        qos=1,
        generation=0,
        dup=dup,
    )


def topic(mtype: str, device: str = "", *, group: str = GROUP, node: str = NODE) -> str:
    return f"spBv1.0/{group}/{mtype}/{node}" + (f"/{device}" if device else "")


def nbirth(seq: int = 0, bd_seq: int = 0) -> bytes:
    return payload(
        [
            metric("bdSeq", bd_seq, DataType.UInt64),
            metric("Node Control/Rebirth", False, DataType.Boolean),
            metric("Uptime", 12, DataType.Int32, alias=1),
        ],
        seq=seq,
    )


def dbirth(seq: int) -> bytes:
    return payload(
        [
            metric("Spindle/Temperature", 415, DataType.Int16, alias=10),
            metric("State", "running", DataType.String, alias=11),
            metric("Parts", 1200, DataType.UInt32, alias=12),
            metric("Power", 7.5, DataType.Double, alias=13, unit="kW"),
            metric("Oil Level %", 80.5, DataType.Float, alias=14),
        ],
        seq=seq,
    )


@dataclass
class FakeMqtt:
    """What the host published, and the wills it set."""

    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    wills: list[tuple[str, bytes]] = field(default_factory=list)

    def publish(self, topic: str, body: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        self.published.append((topic, body, qos, retain))
        return True

    def set_will(self, topic: str, body: bytes) -> None:
        self.wills.append((topic, body))

    def on(self, topic: str) -> list[bytes]:
        return [b for t, b, _, _ in self.published if t == topic]
