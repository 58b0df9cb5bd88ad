"""Helpers of the ingest tests: contract batches, a QoS 1 publisher, an in-process ingester."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from contract import Batch, Cellular, Energy, Generic, Machine, encode, topic_for
from contract.readings import AnyReading
from ingest.service import Ingester
from settings.ingest import IngestSettings
from settings.loader import settings_from_dict


def readings_for(gw: str, seq: int, n: int, *, base_ms: int | None = None) -> list[AnyReading]:
    """``n`` mixed readings with distinct identities (device and timestamp vary with ``seq``)."""
    base = base_ms if base_ms is not None else int(time.time() * 1000) - 60_000
    out: list[AnyReading] = []
    for i in range(n):
        ts = base + seq * 1000 + i
        dev = f"{gw}-d{i % 7}"
        match i % 4:
            case 0:
                out.append(
                    Cellular(
                        ts=ts,
                        dev=dev,
                        operator="Sao Bien",
                        tech="LTE",
                        rsrp_dbm=-100.0 - i % 20,
                        lat=20.85 + i * 1e-4,
                        lon=106.68,
                        pci=i % 500,
                    )
                )
            case 1:
                out.append(
                    Machine(ts=ts, dev=dev, state="running", parts_total=seq * 100 + i, spindle_temp_c=41.5)
                )
            case 2:
                out.append(Energy(ts=ts, dev=dev, power_kw=12.5, energy_kwh=1000.0 + i))
            case _:
                out.append(Generic(ts=ts, dev=dev, f={"level_m": 2.5}))
    return out


def batch_for(gw: str, seq: int, n: int, **kw: Any) -> Batch:
    return Batch(v=1, gw=gw, seq=seq, readings=readings_for(gw, seq, n, **kw), sent=int(time.time() * 1000))


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(
        self, host: str, port: int, client_id: str, protocol: MQTTProtocolVersion = mqtt.MQTTv5
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.client.max_inflight_messages_set(100)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    def publish_batches(self, root: str, park: str, batches: list[Batch]) -> None:
        infos = [self.publish(topic_for(park, b.gw, "telemetry", root=root), encode(b)) for b in batches]
        for info in infos:
            info.wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ingest_settings(
    *,
    broker_port: int,
    root: str,
    client_id: str,
    sink: dict[str, Any],
    tmp: Path,
    protocol: str = "5",
    **ingest: Any,
) -> IngestSettings:
    data = {
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "topic_root": root,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "protocol": protocol,
        },
        "sink": sink,
        "ingest": {
            "client_id": client_id,
            "spool_dir": str(tmp / f"spool-{client_id}"),
            "metrics_enabled": "metrics_port" in ingest,  # only where a test reads /metrics
            "flush_interval_s": 0.05,
            "retry_min_s": 0.1,
            "retry_max_s": 0.5,
            **ingest,
        },
    }
    return settings_from_dict(IngestSettings, data)


@contextlib.asynccontextmanager
async def running(settings: IngestSettings) -> AsyncIterator[Ingester]:
    """An ingester running in this event loop until the block ends (graceful stop)."""
    ing = Ingester(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(ing.run(stop))
    try:
        async with asyncio.timeout(20):
            await ing.ready.wait()
            await ing.consumer.subscribed.wait()
        yield ing
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_until(pred: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


COUNT_FIELD = {"cellular": "rsrp_dbm", "machine": "state", "energy": "power_kw", "generic": "num"}
"""A field every test reading of that kind carries, to count points with InfluxQL."""


async def influx_count(port: int, db: str, measurement: str) -> int:
    from storage.influx_http import InfluxHTTP, InfluxQueryError

    http = InfluxHTTP(url=f"http://127.0.0.1:{port}")
    try:
        field = COUNT_FIELD.get(measurement, "reason")
        results = await http.query(f'SELECT count("{field}") FROM "{measurement}"', database=db, method="GET")
    except InfluxQueryError:
        return 0
    finally:
        await http.aclose()
    series = results[0].get("series") if results else None
    return int(series[0]["values"][0][1]) if series else 0


async def influx_rows(port: int, db: str, q: str) -> list[dict[str, Any]]:
    from storage.influx_http import InfluxHTTP

    http = InfluxHTTP(url=f"http://127.0.0.1:{port}")
    try:
        results = await http.query(q, database=db, method="GET")
    finally:
        await http.aclose()
    out = []
    for series in results[0].get("series", []) if results else []:
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            row.update(series.get("tags") or {})
            out.append(row)
    return out


def start_ingest_process(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``parkwatch ingest --config config`` as a child process, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch", "ingest", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
