"""The alarm store keeps rules, instances and the journal across a real process restart."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from analytics.alarm_lifecycle import Acknowledge, Clear, apply, raise_alarm
from storage.alarm_store import AlarmStore

WRITER = textwrap.dedent(
    """
    import sys
    from analytics.alarm_lifecycle import Acknowledge, Shelve, apply, raise_alarm
    from storage.alarm_store import AlarmEvent, AlarmStore

    store = AlarmStore(sys.argv[1])
    store.seed_rule("hot", {"type": "threshold", "threshold": 85.0}, enabled=True, now_ms=1)
    inst = raise_alarm(rule_id="hot", park="p1", source="gw-1/cnc-01", priority="critical",
                       message="too hot", at_ms=1000)
    aid = store.insert_alarm(inst, 1000)
    inst = apply(inst, Acknowledge(by="anna", at_ms=2000, comment="seen"))
    inst = apply(inst, Shelve(by="anna", at_ms=2000, until_ms=9_000_000, reason="repair"))
    store.update_alarm(aid, inst, 2000)
    store.log_event(AlarmEvent(alarm_id=aid, rule_id="hot", park="p1", source="gw-1/cnc-01",
                               priority="critical", kind="activated", state="active_unacknowledged",
                               at_ms=1000, actor="", detail=""))
    store.close()
    print(aid)
    """
)


def test_state_survives_a_process_restart(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    out = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    aid = int(out.stdout.strip())
    store = AlarmStore(path)  # a new process image: only the file carries the state
    got = store.open_alarm("hot", "p1", "gw-1/cnc-01")
    assert got is not None and got.id == aid
    assert got.instance.acknowledged_by == "anna"
    assert got.instance.state(3000) == "shelved"
    assert got.instance.state(9_000_000) == "active_acknowledged"
    assert [r.id for r in store.rules()] == ["hot"]
    assert [e.kind for e in store.events(start_ms=0, end_ms=10_000)] == ["activated"]
    store.close()


def test_one_open_instance_per_rule_and_source(tmp_path: Path) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    inst = raise_alarm(rule_id="r", park="p", source="s", priority="low", message="m", at_ms=1)
    first = store.insert_alarm(inst, 1)
    closed = apply(apply(inst, Acknowledge(by="a", at_ms=2)), Clear(at_ms=3))
    store.update_alarm(first, closed, 3)
    assert store.open_alarm("r", "p", "s") is None
    second = store.insert_alarm(inst, 4)
    assert second != first
    assert [a.id for a in store.alarms(open_only=True)] == [second]
    assert {a.id for a in store.alarms(since_ms=0)} == {first, second}


def test_config_seed_never_overwrites_an_edit(tmp_path: Path) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    store.put_rule("hot", {"threshold": 90.0}, enabled=False, origin="api", now_ms=1)
    assert store.seed_rule("hot", {"threshold": 85.0}, enabled=True, now_ms=2) is False
    rule = store.rule("hot")
    assert rule is not None and rule.body == {"threshold": 90.0} and rule.enabled is False


def test_lease_has_one_holder(tmp_path: Path) -> None:
    a, b = AlarmStore(tmp_path / "r.sqlite"), AlarmStore(tmp_path / "r.sqlite")
    assert a.take_lease("evaluator", "a", now_ms=0, ttl_ms=1000)
    assert not b.take_lease("evaluator", "b", now_ms=500, ttl_ms=1000)
    assert a.take_lease("evaluator", "a", now_ms=900, ttl_ms=1000)
    assert b.take_lease("evaluator", "b", now_ms=1901, ttl_ms=1000)
