"""InfluxDB sink status handling against an in-memory fake of ``/write`` (unit level)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from ingest.errors import RetryableError
from ingest.model import Part, WriteBatch
from ingest.sinks.influxdb import InfluxSink
from settings.ingest import InfluxSinkSettings
from tests.ingest.helpers import readings_for


class FakeInflux:
    """Stores lines; refuses bodies over ``max_lines`` (413) and lines holding ``bad`` (400 partial)."""

    def __init__(self, *, max_lines: int = 10_000, bad: str = "\x00", status: int | None = None) -> None:
        self.max_lines, self.bad, self.status = max_lines, bad, status
        self.stored: set[str] = set()
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.status is not None:
            return httpx.Response(self.status, headers={"Retry-After": "3"}, json={"error": "busy"})
        lines = gzip.decompress(request.content).decode().split("\n")
        if len(lines) > self.max_lines:
            return httpx.Response(413, json={"error": "Request Entity Too Large"})
        good = [line for line in lines if self.bad not in line.split(" ", 1)[0]]
        self.stored.update(good)
        if len(good) < len(lines):
            return httpx.Response(
                400, json={"error": f"partial write: field type conflict dropped={len(lines) - len(good)}"}
            )
        return httpx.Response(204)


def _sink(fake: FakeInflux, max_lines: int = 1000) -> InfluxSink:
    settings = InfluxSinkSettings(url="http://influx.test", max_lines_per_write=max_lines)
    return InfluxSink(settings, src="ing-t", transport=httpx.MockTransport(fake))


def _batch(n: int) -> WriteBatch:
    readings = readings_for("gw-1", 1, n, base_ms=1_700_000_000_000)
    return WriteBatch(parts=[Part(park="p", gw="gw-1", readings=readings, h3=[0] * n)])


async def test_413_splits_until_it_fits() -> None:
    fake = FakeInflux(max_lines=30)
    sink = _sink(fake)
    result = await sink.write(_batch(100))
    await sink.aclose()
    assert result.readings == 100 and not result.rejected
    assert len(fake.stored) == 100
    assert fake.requests > 4


async def test_partial_write_dead_letters_only_the_refused_points() -> None:
    fake = FakeInflux(bad=",dev=gw-1-d3,")
    sink = _sink(fake)
    batch = _batch(70)
    result = await sink.write(batch)
    await sink.aclose()
    refused = [r for r in batch.parts[0].readings if r.dev == "gw-1-d3"]
    assert len(result.rejected) == len(refused)
    assert all(d.reason.startswith("refused by InfluxDB: ") and d.gw == "gw-1" for d in result.rejected)
    stored_readings = [line for line in fake.stored if not line.startswith("dead_letter")]
    assert len(stored_readings) == 70 - len(refused)
    assert sum(line.startswith("dead_letter") for line in fake.stored) == len(refused)


@pytest.mark.parametrize("status", [429, 503])
async def test_overload_is_retryable_with_retry_after(status: int) -> None:
    sink = _sink(FakeInflux(status=status))
    with pytest.raises(RetryableError) as info:
        await sink.write(_batch(5))
    await sink.aclose()
    assert info.value.retry_after_s == 3.0


@pytest.mark.parametrize(
    ("url", "setting", "compressed"),
    [
        ("http://127.0.0.1:8086", "auto", False),
        ("http://influx.test", "auto", True),
        ("http://127.0.0.1:8086", True, True),
        ("http://influx.test", False, False),
    ],
)
async def test_gzip_auto_sends_plain_bodies_to_a_loopback_server(
    url: str, setting: object, compressed: bool
) -> None:
    bodies: list[tuple[str | None, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.headers.get("Content-Encoding"), request.content))
        return httpx.Response(204)

    settings = InfluxSinkSettings(url=url, gzip=setting)  # type: ignore[arg-type]
    sink = InfluxSink(settings, src="ing-t", transport=httpx.MockTransport(handler))
    result = await sink.write(_batch(3))
    await sink.aclose()
    assert result.readings == 3
    ((encoding, body),) = bodies
    assert encoding == ("gzip" if compressed else None)
    text = (gzip.decompress(body) if compressed else body).decode()
    assert [line.split(",", 1)[0] for line in text.split("\n")] == ["cellular", "machine", "energy"]
