"""A small deterministic park scenario, encoded by the ingester's own line-protocol code.

Two parks around Hai Phong, two gateways each, two hours at one sample a minute: a survey probe
walking a 6x6 grid of H3 cells (three operators, LTE/NR/UMTS, four dead cells per park), a CNC
machine cycling through its states, an energy meter, an environment sensor, two broadband probe
targets, the gateway's own health, its status (one gateway ends offline), its loss ledger and a
few dead letters (some from an unknown gateway, without a park). Every reading goes through the
contract's decoder (ranges checked) and :func:`ingest.points.encode_batch`, so the dashboards
are tested against exactly what the ingester writes. The scenario exercises every panel: faults, vibration and PM2.5 alarms,
dead zones, failed IPv6 probes, lost batches.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import h3
import msgspec

from contract.messages import Status
from contract.readings import (
    AnyReading,
    Broadband,
    Cellular,
    Energy,
    Environment,
    Machine,
    Reading,
    System,
)
from ingest.model import DeadLetter, LedgerRow, Part, StatusRow, WriteBatch
from ingest.points import encode_batch

_json = msgspec.json.Encoder()
_decode_reading = msgspec.json.Decoder(AnyReading).decode

H3_RESOLUTION: Final = 10
STEP_S: Final = 60
PARKS: Final[dict[str, tuple[float, float]]] = {
    "dinh-vu": (20.8400, 106.7700),
    "trang-due": (20.7900, 106.5800),
}
GATEWAYS: Final[dict[str, str]] = {
    "gw-dv-01": "dinh-vu",
    "gw-dv-02": "dinh-vu",
    "gw-td-01": "trang-due",
    "gw-td-02": "trang-due",
}
OFFLINE_GATEWAY: Final = "gw-td-02"
OPERATORS: Final[tuple[str, ...]] = ("Viettel", "VinaPhone", "MobiFone")
GRID: Final = 6
GRID_STEP_DEG: Final = 0.003
DEAD_CELLS: Final = frozenset({(5, 5), (5, 4), (4, 5), (0, 5)})
MACHINE_CYCLE: Final[tuple[str, ...]] = (
    ("running",) * 6 + ("idle",) * 2 + ("running",) * 5 + ("setup",) + ("fault",) * 2 + ("off",) * 2
)


def _valid(reading: Reading) -> AnyReading:
    """The reading after a round trip through the contract's decoder (ranges checked)."""
    return _decode_reading(_json.encode(reading))


class _Step:
    """The readings of one gateway at one instant, with their H3 cells (0: no position)."""

    def __init__(self) -> None:
        self.readings: list[AnyReading] = []
        self.cells: list[int] = []

    def add(self, reading: Reading, cell: int = 0) -> None:
        self.readings.append(_valid(reading))
        self.cells.append(cell)


def _status(**fields: object) -> Status:
    return msgspec.json.decode(_json.encode(fields), type=Status)


@dataclass(frozen=True, slots=True)
class Scenario:
    """The scenario's time span (seconds since the epoch, inclusive)."""

    start_s: int
    end_s: int

    @classmethod
    def ending_at(cls, end_s: int, *, hours: float = 2.0) -> Scenario:
        end_s -= end_s % STEP_S
        return cls(start_s=end_s - int(hours * 3600), end_s=end_s)

    def steps(self) -> range:
        return range(self.start_s, self.end_s + 1, STEP_S)


def _cell_rsrp(park_idx: int, gx: int, gy: int, op_idx: int, rng: random.Random) -> float:
    if (gx, gy) in DEAD_CELLS:
        base = -121.0
    else:
        base = -72.0 - 4.0 * math.hypot(gx, gy) - 3.0 * op_idx - 2.0 * park_idx
    return round(max(-150.0, min(-40.0, base + rng.uniform(-3.0, 3.0))), 1)


def batch(
    scenario: Scenario,
    seed: int = 6,
    *,
    gateways: Mapping[str, str] = GATEWAYS,
    parks: Mapping[str, tuple[float, float]] = PARKS,
) -> WriteBatch:
    """Everything the ingester would hand its sink for the scenario.

    ``gateways`` maps gateway id → park id, ``parks`` park id → (lat, lon) of its survey grid;
    the defaults are the small scenario of the tests, benchmarks pass bigger ones.
    """
    rng = random.Random(seed)
    out = WriteBatch()
    for g_idx, (gw, park) in enumerate(gateways.items()):
        park_idx = list(parks).index(park)
        lat0, lon0 = parks[park]
        parts = rejects = 0
        energy_kwh = 1000.0 * (g_idx + 1)
        received = missing = duplicated = late = 0
        dropped = 0
        last_step = len(scenario.steps()) - 1
        for i, ts in enumerate(scenario.steps()):
            ts_ms = ts * 1000
            step = _Step()
            add = step.add

            # Survey probe: visits the grid cell by cell, every operator on every visit.
            cell = (i + g_idx * 7) % (GRID * GRID)
            gx, gy = cell % GRID, cell // GRID
            lat = round(lat0 + gy * GRID_STEP_DEG + rng.uniform(-0.0001, 0.0001), 6)
            lon = round(lon0 + gx * GRID_STEP_DEG + rng.uniform(-0.0001, 0.0001), 6)
            h3_cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, H3_RESOLUTION))
            for op_idx, operator in enumerate(OPERATORS):
                tech = "UMTS" if (i + op_idx) % 9 == 0 else ("NR" if op_idx == 0 and i % 2 else "LTE")
                dead = (gx, gy) in DEAD_CELLS
                sinr = round(-4.0 + rng.uniform(-2, 2) if dead else 14.0 + rng.uniform(-6, 6), 1)
                add(
                    Cellular(
                        ts=ts_ms,
                        dev="probe-1",
                        lat=lat,
                        lon=lon,
                        operator=operator,
                        tech=tech,  # type: ignore[arg-type]
                        rsrp_dbm=_cell_rsrp(park_idx, gx, gy, op_idx, rng),
                        sinr_db=sinr,
                        rsrq_db=-9.5,
                        pci=100 + op_idx,
                    ),
                    h3_cell,
                )
            # Machine.
            state = MACHINE_CYCLE[(i + g_idx * 3) % len(MACHINE_CYCLE)]
            if state == "running":
                parts += 1
                if i % 11 == 0:
                    rejects += 1
            add(
                Machine(
                    ts=ts_ms,
                    dev="cnc-1",
                    state=state,  # type: ignore[arg-type]
                    spindle_temp_c=round(38.0 + rng.uniform(0, 8), 1),
                    motor_temp_c=round(45.0 + rng.uniform(0, 10), 1),
                    vibration_mm_s=5.2 if state == "fault" else round(1.2 + rng.uniform(0, 1.2), 2),
                    spindle_load_pct=round(55.0 + rng.uniform(0, 30), 1) if state == "running" else 0.0,
                    parts_total=parts,
                    rejects_total=rejects,
                )
            )
            # Energy meter.
            power_kw = round(120.0 + 40.0 * (state == "running") + rng.uniform(-5, 5), 2)
            energy_kwh = round(energy_kwh + power_kw * STEP_S / 3600.0, 3)
            add(
                Energy(
                    ts=ts_ms,
                    dev="meter-1",
                    power_kw=power_kw,
                    energy_kwh=energy_kwh,
                    voltage_v=round(400.0 + rng.uniform(-6, 6), 1),
                    current_a=round(power_kw * 1000 / (400 * 1.732 * 0.92), 1),
                    power_factor=round(0.86 + rng.uniform(0, 0.1), 3),
                )
            )
            # Environment.
            add(
                Environment(
                    ts=ts_ms,
                    dev="env-1",
                    temp_c=round(29.0 + 3 * math.sin(i / 20) + rng.uniform(-0.5, 0.5), 2),
                    humidity_pct=round(78.0 + rng.uniform(-5, 5), 1),
                    pm25_ug_m3=round(62.0 if i % 17 == 0 else 22.0 + rng.uniform(0, 15), 1),
                    noise_dba=round(68.0 + rng.uniform(0, 12), 1),
                    co2_ppm=round(650.0 + rng.uniform(0, 300), 0),
                )
            )
            # Broadband probes.
            for t_idx, target in enumerate(("vnix-hn", "dns-google")):
                add(
                    Broadband(
                        ts=ts_ms,
                        dev="probe-bb",
                        target=target,
                        latency_ms=round(8.0 + 20 * t_idx + rng.uniform(0, 6), 2),
                        jitter_ms=round(rng.uniform(0.2, 3.0), 2),
                        loss_pct=round(rng.uniform(0, 2.0), 2),
                        down_mbps=round(300.0 + rng.uniform(-50, 50), 1),
                        up_mbps=round(120.0 + rng.uniform(-20, 20), 1),
                        dns_ms=round(4.0 + rng.uniform(0, 10), 1),
                        ipv4_ok=True,
                        ipv6_ok=(i + t_idx) % 7 != 0,
                    )
                )
            # The gateway's own health.
            add(
                System(
                    ts=ts_ms,
                    dev="gateway",
                    cpu_pct=round(12.0 + rng.uniform(0, 30), 1),
                    mem_pct=round(40.0 + rng.uniform(0, 10), 1),
                    disk_pct=round(20.0 + i * 0.01, 2),
                    uptime_s=float(86400 + i * STEP_S),
                    clock_offset_ms=round(rng.uniform(-15, 15), 1),
                    clock_synced=True,
                )
            )
            out.parts.append(Part(park=park, gw=gw, readings=step.readings, h3=step.cells))
            # Status every 5 minutes; the offline gateway's Last Will at the end.
            if i % 5 == 0:
                backlog = 0 if i % 30 else 1500 + 100 * g_idx
                if backlog:
                    dropped += 10 * g_idx
                status = _status(
                    v=1,
                    gw=gw,
                    state="online",
                    ts=ts_ms,
                    agent_version="0.1.0",
                    config_hash=f"c0ffee{g_idx}",
                    backlog=backlog,
                    dropped=dropped,
                    buffer_pct=round(backlog / 100.0, 1),
                    uplink={
                        "operator": OPERATORS[g_idx % 3],
                        "tech": "LTE",
                        "rsrp_dbm": round(-85.0 - 6 * g_idx + rng.uniform(-3, 3), 1),
                        "sinr_db": round(12.0 - 3 * g_idx + rng.uniform(-2, 2), 1),
                    },
                )
                out.statuses.append(StatusRow(ts_ms=ts_ms, park=park, gw=gw, status=status))
                received += 5
                if i % 20 == 10:
                    missing += 1 + g_idx
                if i % 40 == 20:
                    duplicated += 1
                    late += 1
                out.ledger.append(
                    LedgerRow(
                        ts_ms=ts_ms,
                        park=park,
                        gw=gw,
                        received=received,
                        missing=missing,
                        duplicated=duplicated,
                        late=late,
                        last_seq=received + missing,
                        ingester="parkwatch-ingest",
                    )
                )
            if gw == OFFLINE_GATEWAY and i == last_step:
                # The Last Will carries no timestamp: the ingester stamps it on receipt.
                last_will = _status(v=1, gw=gw, state="offline")
                out.statuses.append(StatusRow(ts_ms=ts_ms + 1000, park=park, gw=gw, status=last_will))
            # Dead letters: a malformed reading now and then, and an unknown gateway.
            if i % 13 == 0:
                out.dead_letters.append(
                    DeadLetter(
                        ts_ns=(ts + 2) * 1_000_000_000,
                        topic=f"parkwatch/v1/{park}/{gw}/up/telemetry",
                        park=park,
                        gw=gw,
                        reason="$.r[3].rsrp_dbm: expected a number >= -156.0",
                        raw='{"kind":"cellular","rsrp_dbm":-999}',
                        src="ingest-1",
                    )
                )
            if g_idx == 0 and i % 29 == 0:
                out.dead_letters.append(
                    DeadLetter(
                        ts_ns=(ts + 3) * 1_000_000_000,
                        topic="parkwatch/v1/unknown-park/gw-rogue/up/telemetry",
                        park="",
                        gw="gw-rogue",
                        reason="unknown gateway gw-rogue",
                        raw="{}",
                        src="ingest-2",
                    )
                )
    return out


def lines(
    scenario: Scenario,
    seed: int = 6,
    *,
    gateways: Mapping[str, str] = GATEWAYS,
    parks: Mapping[str, tuple[float, float]] = PARKS,
) -> list[str]:
    """The scenario as the ingester's InfluxDB sink encodes it (:func:`ingest.points.encode_batch`)."""
    data = batch(scenario, seed, gateways=gateways, parks=parks)
    encoded = encode_batch(data, src="ingest-test", now_ns=scenario.end_s * 1_000_000_000)
    assert not encoded.rejected, encoded.rejected[:3]
    return encoded.lines
