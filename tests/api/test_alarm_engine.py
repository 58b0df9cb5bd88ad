"""The evaluator over a fake condition source: raise, clear, flapping, suppression, restart."""

from __future__ import annotations

import time
from pathlib import Path

from analytics.alarm_lifecycle import Acknowledge, Shelve
from api.alarms.engine import AlarmEngine
from api.services.alarms import Condition, Key
from settings.api import AlarmRule, AlarmSettings
from storage.alarm_store import AlarmStore

T0 = 1_800_000_000_000


class FakeConditions:
    """Conditions set by the test, per rule id; machine states likewise."""

    def __init__(self) -> None:
        self.holding: dict[str, dict[Key, Condition]] = {}
        self.machines: dict[Key, str] = {}

    def hold(self, rule: str, park: str, source: str, at_ms: int) -> None:
        self.holding.setdefault(rule, {})[(park, source)] = Condition(
            park=park, source=source, since_ms=at_ms, message=f"{rule} on {source}"
        )

    def drop(self, rule: str, park: str, source: str) -> None:
        self.holding.get(rule, {}).pop((park, source), None)

    def evaluate(
        self, rule: AlarmRule, now_ms: int, active: set[Key], memory: dict[str, object]
    ) -> dict[Key, Condition]:
        return dict(self.holding.get(rule.id, {}))

    def machine_states(self, now_ms: int) -> dict[Key, str]:
        return dict(self.machines)


SETTINGS = AlarmSettings(
    rules=[AlarmRule(id="hot", kind="machine", field="spindle_temp_c", threshold=80, priority="high")],
    machine_fault_after_s=60,
    gateway_offline_after_s=300,
)


def engine(path: Path, fake: FakeConditions) -> AlarmEngine:
    e = AlarmEngine(SETTINGS, AlarmStore(path), fake)
    e.seed(T0)
    return e


def states(e: AlarmEngine, now: int) -> dict[tuple[str, str], str]:
    return {
        (a.instance.rule_id, a.instance.source): a.instance.state(now) for a in e.store.alarms(since_ms=0)
    }


def test_config_seeds_the_rules_with_the_built_in_ones(tmp_path: Path) -> None:
    e = engine(tmp_path / "r.sqlite", FakeConditions())
    rules, bad = e.rules()
    assert bad == {}
    assert {(r.id, r.type, r.effective_priority) for r in rules} == {
        ("hot", "threshold", "high"),
        ("machine_fault", "state", "critical"),
        ("gateway_offline", "gateway_offline", "high"),
    }


def test_raise_ack_clear_closes_and_a_new_activation_is_a_new_alarm(tmp_path: Path) -> None:
    fake = FakeConditions()
    e = engine(tmp_path / "r.sqlite", fake)
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    assert e.evaluate(T0).raised == 1
    assert e.evaluate(T0 + 10_000).raised == 0  # still the same one
    (a,) = e.store.alarms(open_only=True)
    e.act(a.id, Acknowledge(by="anna", at_ms=T0 + 20_000), "acknowledged", "anna", "", T0 + 20_000)
    fake.drop("hot", "p1", "gw-1/cnc-01")
    assert e.evaluate(T0 + 30_000).cleared == 1
    assert e.store.alarms(open_only=True) == []
    fake.hold("hot", "p1", "gw-1/cnc-01", T0 + 40_000)
    assert e.evaluate(T0 + 40_000).raised == 1
    assert len(e.store.alarms(since_ms=0)) == 2


def test_flapping_reactivates_one_instance_and_journals_each_activation(tmp_path: Path) -> None:
    fake = FakeConditions()
    e = engine(tmp_path / "r.sqlite", fake)
    for i in range(4):  # on/off every 10 s: four activations in 40 s, nobody acknowledges
        fake.hold("hot", "p1", "gw-1/cnc-01", T0 + i * 20_000)
        e.evaluate(T0 + i * 20_000)
        fake.drop("hot", "p1", "gw-1/cnc-01")
        e.evaluate(T0 + i * 20_000 + 10_000)
    (a,) = e.store.alarms(since_ms=0)
    assert a.instance.activations == 4
    assert a.instance.state(T0 + 90_000) == "cleared_unacknowledged"
    acts = e.store.events(start_ms=T0, end_ms=T0 + 100_000, kind="activated")
    assert [ev.at_ms - T0 for ev in acts] == [0, 20_000, 40_000, 60_000]


def test_gateway_offline_suppresses_its_devices_and_maintenance_suppresses_a_machine(tmp_path: Path) -> None:
    fake = FakeConditions()
    e = engine(tmp_path / "r.sqlite", fake)
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    fake.hold("hot", "p1", "gw-2/press-01", T0)
    fake.hold("gateway_offline", "p1", "gw-1", T0)
    fake.machines[("p1", "gw-2/press-01")] = "off"
    report = e.evaluate(T0)
    assert report.suppressed == 2
    got = {
        a.instance.source: (a.instance.state(T0), a.instance.suppressed_by)
        for a in e.store.alarms(open_only=True)
    }
    assert got == {
        "gw-1/cnc-01": ("suppressed", "gateway gw-1 offline"),
        "gw-2/press-01": ("suppressed", "planned maintenance (machine off)"),
        "gw-1": ("active_unacknowledged", None),
    }
    fake.drop("gateway_offline", "p1", "gw-1")
    fake.machines.clear()
    assert e.evaluate(T0 + 10_000).unsuppressed == 2
    assert set(states(e, T0 + 10_000).values()) == {"active_unacknowledged", "cleared_unacknowledged"}


def test_disabled_rule_clears_its_alarms(tmp_path: Path) -> None:
    fake = FakeConditions()
    e = engine(tmp_path / "r.sqlite", fake)
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    e.evaluate(T0)
    stored = e.store.rule("hot")
    assert stored is not None
    e.store.put_rule("hot", stored.body, enabled=False, origin="api", now_ms=T0)
    assert e.evaluate(T0 + 10_000).cleared == 1


def test_shelving_expires_during_evaluation_and_state_survives_a_new_engine(tmp_path: Path) -> None:
    fake = FakeConditions()
    path = tmp_path / "r.sqlite"
    e = engine(path, fake)
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    e.evaluate(T0)
    (a,) = e.store.alarms(open_only=True)
    e.act(
        a.id,
        Shelve(by="anna", at_ms=T0, until_ms=T0 + 60_000, reason="sensor swap"),
        "shelved",
        "anna",
        "sensor swap",
        T0,
    )
    e.store.close()
    again = engine(path, fake)  # a restarted API: a new store connection, the same file
    assert states(again, T0 + 1)[("hot", "gw-1/cnc-01")] == "shelved"
    assert again.evaluate(T0 + 30_000).unshelved == 0
    assert again.evaluate(T0 + 60_000).unshelved == 1
    assert states(again, T0 + 60_000)[("hot", "gw-1/cnc-01")] == "active_unacknowledged"


def test_every_visible_change_goes_to_the_outbox_once(tmp_path: Path) -> None:
    fake = FakeConditions()
    e = engine(tmp_path / "r.sqlite", fake)
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    e.evaluate(T0)
    e.evaluate(T0 + 10_000)
    (a,) = e.store.alarms(open_only=True)
    e.act(a.id, Acknowledge(by="anna", at_ms=T0 + 20_000), "acknowledged", "anna", "", T0 + 20_000)
    fake.drop("hot", "p1", "gw-1/cnc-01")
    e.evaluate(T0 + 30_000)
    changes = [(b["change"], b["state"]) for _, b in e.store.pending()]
    assert changes == [
        ("activated", "active_unacknowledged"),
        ("acknowledged", "active_acknowledged"),
        ("cleared", "cleared"),
    ]


def test_the_loop_evaluates_under_the_lease_and_notifies(tmp_path: Path) -> None:
    import asyncio

    from api.alarms.loop import LoopStats, run

    fake = FakeConditions()
    fake.hold("hot", "p1", "gw-1/cnc-01", T0)
    e = engine(tmp_path / "r.sqlite", fake)
    other = AlarmStore(tmp_path / "r.sqlite")
    assert other.take_lease("evaluator", "another-replica", now_ms=0, ttl_ms=1)  # expired long ago
    stats = LoopStats()

    async def main() -> None:
        stop = asyncio.Event()

        async def notify() -> None:
            stop.set()  # one round is enough

        await run(e, interval_s=30.0, stop=stop, stats=stats, notify=notify, holder="me", first_now=True)

    asyncio.run(main())
    assert (stats.evaluations, stats.raised, stats.errors) == (1, 1, 0)
    # Now "me" holds the lease: another replica does not evaluate.
    assert not other.take_lease("evaluator", "another-replica", now_ms=int(time.time() * 1000), ttl_ms=1000)
