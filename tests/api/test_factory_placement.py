"""Services: devices are placed by (park, gateway, device); unplaced devices are booked to their
gateway; performance above 100 % is flagged; a machine in fault raises an alarm.

Unit tests over the in-memory backend of ``tests.fakes``, its buckets fixed tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.alarms.engine import seed_rules
from api.services import Services
from settings.api import ApiSettings
from settings.loader import settings_from_dict
from storage.query import EnergyBuckets, MachineBuckets, Scope
from tests.fakes import FakeQuery

T0 = datetime(2026, 11, 2, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
SCOPE = Scope(parks=None, start=T0, end=T0 + timedelta(hours=1))


def tables(
    *, energy: list[dict[str, Any]] | None = None, machine: list[dict[str, Any]] | None = None
) -> FakeQuery:
    """A fake backend whose energy and machine buckets are the given rows; no status, no ledger."""
    return FakeQuery(
        energy=EnergyBuckets.from_rows(energy or []), machine=MachineBuckets.from_rows(machine or [])
    )


def _settings(factory: dict[str, Any], **alarms: Any) -> ApiSettings:
    return settings_from_dict(
        ApiSettings, {"api": {"cache_ttl_s": 0.0}, "factory": factory, "alarms": alarms}
    )


def _meter(gw: str, kwh_from: float, kwh_to: float) -> list[dict[str, Any]]:
    return [
        {"park": "vsip", "gw": gw, "dev": "meter-1", "bucket_ms": T0_MS, "power_mean_kw": 10.0, "energy_max_kwh": kwh_from, "energy_min_kwh": kwh_from},
        {"park": "vsip", "gw": gw, "dev": "meter-1", "bucket_ms": T0_MS + 900_000, "power_mean_kw": 10.0, "energy_max_kwh": kwh_to, "energy_min_kwh": kwh_to},
    ]  # fmt: skip


def test_same_meter_id_on_two_gateways_is_booked_to_each_gateways_factory() -> None:
    settings = _settings(
        {
            "meters": [
                {"park": "vsip", "gw": "gw-01", "dev": "meter-1", "factory": "electronics"},
                {"park": "vsip", "gw": "gw-02", "dev": "meter-1", "factory": "moulding"},
            ]
        }
    )
    fake = tables(energy=_meter("gw-01", 100.0, 103.464) + _meter("gw-02", 500.0, 514.552))
    service = Services.build(settings, fake)
    meters = {(r.gw, r.factory): r.energy_kwh for r in service.factory.energy(SCOPE, "meter")}
    assert meters == {("gw-01", "electronics"): 3.464, ("gw-02", "moulding"): 14.552}
    factories = {r.factory: r.energy_kwh for r in service.factory.energy(SCOPE, "factory")}
    assert factories == {"electronics": 3.464, "moulding": 14.552}


def test_an_entry_naming_the_gateway_wins_over_one_for_any_gateway() -> None:
    settings = _settings(
        {
            "meters": [
                {"park": "vsip", "dev": "meter-1", "factory": "shared"},
                {"park": "vsip", "gw": "gw-02", "dev": "meter-1", "factory": "moulding"},
            ]
        }
    )
    fake = tables(energy=_meter("gw-01", 0.0, 1.0) + _meter("gw-02", 0.0, 2.0))
    rows = Services.build(settings, fake).factory.energy(SCOPE, "meter")
    assert {(r.gw, r.factory) for r in rows} == {("gw-01", "shared"), ("gw-02", "moulding")}


def _machine(gw: str, dev: str, states: list[str], parts: list[float]) -> list[dict[str, Any]]:
    return [
        {"park": "vsip", "gw": gw, "dev": dev, "bucket_ms": T0_MS + i * 60_000, "state": s,
         "parts_total_max": p, "parts_total_min": p, "rejects_total_max": 0.0, "rejects_total_min": 0.0}
        for i, (s, p) in enumerate(zip(states, parts, strict=True))
    ]  # fmt: skip


def test_unplaced_devices_are_booked_to_their_gateway_without_an_unassigned_row() -> None:
    fake = tables(
        machine=_machine("gw-01", "smt-01", ["running"] * 3, [0.0, 10.0, 20.0]),
        energy=_meter("gw-01", 0.0, 1.0),
    )
    service = Services.build(_settings({}), fake)
    lines = service.factory.oee(SCOPE, "line")
    assert [(r.factory, r.line) for r in lines] == [("gw-01", "")]
    assert lines[0].availability == 1.0 and lines[0].performance is None
    assert [r.factory for r in service.factory.energy(SCOPE, "factory")] == ["gw-01"]


def test_performance_above_100_percent_is_flagged_and_oee_withheld() -> None:
    # 2 min running, then off; 20 parts. An ideal cycle of 10 s says 200 s of ideal time: 167 %.
    placed = {"park": "vsip", "dev": "smt-01", "factory": "f", "line": "l", "ideal_cycle_s": 10.0}
    fake = tables(machine=_machine("gw-01", "smt-01", ["running", "running", "off"], [0.0, 10.0, 20.0]))
    service = Services.build(_settings({"machines": [placed]}, machine_fault_after_s=0), fake)
    row = service.factory.oee(SCOPE, "machine")[0]
    assert row.performance == pytest.approx(200 / 120, abs=1e-4)
    assert row.ideal_cycle_suspect is True and row.oee is None
    fine = Services.build(_settings({"machines": [{**placed, "ideal_cycle_s": 5.0}]}), fake)
    row = fine.factory.oee(SCOPE, "machine")[0]
    assert row.ideal_cycle_suspect is False and row.oee == pytest.approx(100 / 120, abs=1e-4)


def test_a_machine_in_fault_raises_a_machine_fault_alarm() -> None:
    states = ["running", "fault", "fault", "fault"]
    fake = tables(machine=_machine("gw-01", "cnc-01", states, [0.0] * 4))
    settings = _settings({}, bucket_s=60, machine_fault_after_s=120)
    service = Services.build(settings, fake)
    (rule,) = [r for r in seed_rules(settings.alarms) if r.id == "machine_fault"]
    assert (rule.type, rule.state, rule.effective_priority) == ("state", "fault", "critical")
    got = service.alarms.evaluate(rule, T0_MS + 240_000, set(), {})
    assert [(k, c.since_ms) for k, c in got.items()] == [(("vsip", "gw-01/cnc-01"), T0_MS + 180_000)]
    assert service.alarms.evaluate(rule, T0_MS + 3_600_000, set(), {}) == {}  # data stopped: cleared
    off = _settings({}, bucket_s=60, machine_fault_after_s=0)
    assert [r.id for r in seed_rules(off.alarms)] == ["gateway_offline"]
