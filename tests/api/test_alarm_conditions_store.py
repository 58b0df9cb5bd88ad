"""Rule types against the real DuckDB store of the API test data: backlog, loss, rate, new zones."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from fastapi.testclient import TestClient

from api.services.alarms import AlarmConditions
from settings.api import AlarmRule
from tests.api.data import T0


def _ms(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)


def _conds(client: TestClient) -> AlarmConditions:
    c: AlarmConditions = client.app.state.ctx.services.alarms  # type: ignore[attr-defined]
    return c


def test_backlog_growing(client: TestClient) -> None:
    # gw-2 reported a backlog of 5 at 30 min and 7 at 50 min (offline in between).
    rule = AlarmRule(id="b", type="backlog_growing", threshold=2, duration_s=1200)
    got = _conds(client).evaluate(rule, _ms(50), set(), {})
    assert list(got) == [("p1", "gw-2")] and "grew by 2" in got[("p1", "gw-2")].message
    assert (
        _conds(client).evaluate(
            AlarmRule(id="b", type="backlog_growing", threshold=3, duration_s=1200), _ms(50), set(), {}
        )
        == {}
    )


def test_loss_above_with_deadband(client: TestClient) -> None:
    # gw-1 lost 2 of 102 batches: 1.96 %.
    c = _conds(client)
    assert list(c.evaluate(AlarmRule(id="l", type="loss_above", threshold=1.5), _ms(60), set(), {})) == [
        ("p1", "gw-1")
    ]
    high = AlarmRule(id="l", type="loss_above", threshold=2.5, deadband=1.0)
    assert c.evaluate(high, _ms(60), set(), {}) == {}
    assert list(c.evaluate(high, _ms(60), {("p1", "gw-1")}, {})) == [("p1", "gw-1")]  # inside the deadband


def test_rate_of_change_runs_on_the_store(client: TestClient) -> None:
    c = _conds(client)
    slow = AlarmRule(
        id="r", type="rate_of_change", kind="machine", field="spindle_temp_c", threshold=1e9, duration_s=0
    )
    assert c.evaluate(slow, _ms(22), set(), {}) == {}
    fast = AlarmRule(id="r", type="rate_of_change", kind="machine", field="spindle_temp_c", threshold=0.0, op=">=",
                     duration_s=0)  # fmt: skip
    assert set(c.evaluate(fast, _ms(21), set(), {})) == {("p1", "gw-1/cnc-1")}


def test_new_dead_zone_remembers_the_zones_it_first_saw(client: TestClient) -> None:
    base = _conds(client)
    # The test data spread three days of drives: read a week (the rule reads 4 durations back).
    week = msgspec.structs.replace(
        base.settings, alarms=msgspec.structs.replace(base.settings.alarms, lookback_s=7 * 86400)
    )
    c = AlarmConditions(week, base.backend, base.fleet, base.coverage)
    rule = AlarmRule(id="z", type="new_dead_zone", duration_s=2 * 86400)
    now = _ms(3 * 1440)
    memory: dict[str, object] = {}
    assert c.evaluate(rule, now, set(), memory) == {}  # the first run learns the zones
    known = memory["known_zones"]
    assert isinstance(known, list) and known
    assert c.evaluate(rule, now, set(), memory) == {}  # nothing new since
    fresh = c.evaluate(rule, now, set(), {"known_zones": []})
    assert len(fresh) == len(known) and all(src.startswith("zone:") for _, src in fresh)
