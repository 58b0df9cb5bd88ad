"""Contract readings straight from the device and radio models (fleet mode: no sockets).

Values are rounded to the resolution of the Modbus registers and AT answers, so a fleet batch
looks like what an edge agent reading the simulated devices would send.
"""

from __future__ import annotations

import itertools
import random

from contract.readings import NO_SERVICE_RSRP_DBM, Broadband, Cellular, Energy, Environment, Machine
from firmware_sim.models.energy import EnergyModel
from firmware_sim.models.environment import EnvironmentModel
from firmware_sim.models.machine import MachineModel
from firmware_sim.scenario import ProbeProfile
from firmware_sim.world import Link


def machine_reading(m: MachineModel, *, ts_ms: int) -> Machine:
    """A machine reading as the edge agent decodes it from the registers."""
    return Machine(
        ts=ts_ms,
        dev=m.spec.id,
        state=m.state,
        spindle_temp_c=round(m.spindle_temp_c, 1),
        motor_temp_c=round(m.motor_temp_c, 1),
        vibration_mm_s=round(m.vibration_mm_s, 2),
        spindle_load_pct=round(m.spindle_load_pct, 1),
        parts_total=m.parts_total,
        rejects_total=m.rejects_total,
        tags={"line": m.spec.line},
    )


def energy_reading(e: EnergyModel, *, ts_ms: int) -> Energy:
    """An energy-meter reading."""
    return Energy(
        ts=ts_ms,
        dev=e.spec.id,
        power_kw=round(e.power_kw, 3),
        energy_kwh=round(int(e.energy_wh) * 0.001, 3),
        voltage_v=round(e.voltage_v, 2),
        current_a=round(e.current_a, 2),
        power_factor=round(e.power_factor, 3),
    )


def environment_reading(s: EnvironmentModel, *, ts_ms: int) -> Environment:
    """An environment-sensor reading."""
    return Environment(
        ts=ts_ms,
        dev=s.spec.id,
        temp_c=round(s.temp_c, 1),
        humidity_pct=round(s.humidity_pct, 1),
        pm25_ug_m3=round(s.pm25_ug_m3, 1),
        noise_dba=round(s.noise_dba, 1),
        co2_ppm=float(round(s.co2_ppm)),
    )


def cellular_reading(
    link: Link,
    *,
    dev: str,
    ts_ms: int,
    operator_name: str,
    position: tuple[float, float] | None,
) -> Cellular | None:
    """A cellular reading (operator by network name, as ``AT+COPS?`` reports it).

    Without service it is a ``no_service`` reading, as the edge agent reports one for a modem
    whose SIM operator is configured.
    """
    c = link.cell
    lat, lon = position if position is not None else (None, None)
    if c is None:
        return Cellular(
            ts=ts_ms,
            dev=dev,
            lat=round(lat, 6) if lat is not None else None,
            lon=round(lon, 6) if lon is not None else None,
            operator=operator_name,
            tech="NR" if link.tech == "NR" else "LTE",
            rsrp_dbm=NO_SERVICE_RSRP_DBM,
            no_service=True,
        )
    return Cellular(
        ts=ts_ms,
        dev=dev,
        lat=round(lat, 6) if lat is not None else None,
        lon=round(lon, 6) if lon is not None else None,
        operator=operator_name,
        tech="NR" if link.tech == "NR" else "LTE",
        rsrp_dbm=float(round(link.rsrp_dbm)),
        rsrq_db=float(round(link.rsrq_db)),
        sinr_db=float(round(link.sinr_db)),
        rssi_dbm=float(round(link.rssi_dbm)) if link.tech == "LTE" else None,
        cell_id=c.cell_id,
        pci=c.pci,
        band=("B" if c.tech == "LTE" else "n") + str(c.band_number),
        earfcn=c.arfcn,
        mcc=c.mcc,
        mnc=c.mnc,
    )


def broadband_reading(profile: ProbeProfile, *, dev: str, ts_ms: int, rng: random.Random) -> Broadband:
    """One probe of a target with ``profile``: ten pings, a download and an upload, drawn from ``rng``."""
    pings = [rng.random() * 100.0 >= profile.loss_pct for _ in range(10)]
    rtts = [max(0.1, rng.gauss(profile.latency_ms, profile.jitter_ms)) for ok in pings if ok]
    latency = sum(rtts) / len(rtts) if rtts else None
    jitter = sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1) if len(rtts) > 1 else None
    return Broadband(
        ts=ts_ms,
        dev=dev,
        target=profile.name,
        latency_ms=round(latency, 2) if latency is not None else None,
        jitter_ms=round(jitter, 2) if jitter is not None else None,
        loss_pct=100.0 * pings.count(False) / len(pings),
        down_mbps=round(profile.down_mbps * rng.uniform(0.8, 1.0), 2),
        up_mbps=round(profile.up_mbps * rng.uniform(0.8, 1.0), 2),
        ipv4_ok=bool(rtts),
        ipv6_ok=bool(rtts),
    )
