"""The alarm lifecycle, table-tested: every event from every state, and the state it leads to."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analytics.alarm_lifecycle import (
    Acknowledge,
    Activate,
    Clear,
    Event,
    Instance,
    InvalidTransition,
    SetOutOfService,
    Shelve,
    Suppress,
    Unshelve,
    expire_shelving,
    notifiable,
    raise_alarm,
)
from analytics.alarm_lifecycle import apply as apply_event

T = 1_000_000
BASE = raise_alarm(rule_id="r", park="p", source="gw/dev", priority="high", message="hot", at_ms=T)
UNACK = BASE
ACKED = replace(BASE, acked=True, acknowledged_by="op", acknowledged_at_ms=T + 1)
CLEARED_UNACK = replace(BASE, active=False, cleared_at_ms=T + 2)
SHELVED = replace(BASE, shelved_until_ms=T + 600_000, shelve_reason="sensor swap", shelved_by="op")
SUPPRESSED = replace(BASE, suppressed_by="gateway gw offline")
OOS = replace(BASE, out_of_service=True)
NOW = T + 10

ACK = Acknowledge(by="anna", at_ms=NOW, comment="on it")
CLEAR = Clear(at_ms=NOW)
ACT = Activate(at_ms=NOW)
SHELVE = Shelve(by="anna", at_ms=NOW, until_ms=NOW + 3_600_000, reason="maintenance crew on site")
UNSHELVE = Unshelve(by="anna", at_ms=NOW)

TABLE: list[tuple[str, Instance, Event, str, bool]] = [
    # name, before, event, state after (at NOW), closed after
    ("raise", UNACK, ACT, "active_unacknowledged", False),
    ("ack active", UNACK, ACK, "active_acknowledged", False),
    ("clear unacked", UNACK, CLEAR, "cleared_unacknowledged", False),
    ("clear acked closes", ACKED, CLEAR, "cleared", True),
    ("ack cleared closes", CLEARED_UNACK, ACK, "cleared", True),
    ("reactivate cleared-unacked", CLEARED_UNACK, ACT, "active_unacknowledged", False),
    ("shelve active", UNACK, SHELVE, "shelved", False),
    ("shelved follows its clear", SHELVED, CLEAR, "shelved", False),
    ("unshelve", SHELVED, UNSHELVE, "active_unacknowledged", False),
    ("ack while shelved", SHELVED, ACK, "shelved", False),
    ("suppress", UNACK, Suppress(reason="planned maintenance", at_ms=NOW), "suppressed", False),
    ("end suppression", SUPPRESSED, Suppress(reason=None, at_ms=NOW), "active_unacknowledged", False),
    (
        "out of service",
        ACKED,
        SetOutOfService(by="eng", at_ms=NOW, out_of_service=True),
        "out_of_service",
        False,
    ),
    (
        "back in service",
        OOS,
        SetOutOfService(by="eng", at_ms=NOW, out_of_service=False),
        "active_unacknowledged",
        False,
    ),
    ("oos keeps a cleared alarm open", replace(OOS, acked=True), CLEAR, "out_of_service", False),
    ("suppressed wins over shelved", SHELVED, Suppress(reason="gw offline", at_ms=NOW), "suppressed", False),
]


@pytest.mark.parametrize(("name", "before", "event", "after", "closed"), TABLE, ids=[t[0] for t in TABLE])
def test_transition(name: str, before: Instance, event: Event, after: str, closed: bool) -> None:
    inst = apply_event(before, event)
    assert inst.state(NOW) == after
    assert inst.closed is closed


INVALID: list[tuple[str, Instance, Event, str]] = [
    ("ack twice", ACKED, ACK, "acknowledged already by op"),
    ("anything on a closed alarm", replace(CLEARED_UNACK, acked=True), ACT, "closed"),
    ("shelve into the past", UNACK, Shelve(by="a", at_ms=NOW, until_ms=NOW, reason="x"), "future"),
    (
        "shelve for over a week",
        UNACK,
        Shelve(by="a", at_ms=NOW, until_ms=NOW + 8 * 86_400_000, reason="x"),
        "at most",
    ),
    ("shelve without reason", UNACK, Shelve(by="a", at_ms=NOW, until_ms=NOW + 60_000, reason="  "), "reason"),
    ("unshelve an unshelved alarm", UNACK, UNSHELVE, "not shelved"),
]


@pytest.mark.parametrize(("name", "before", "event", "message"), INVALID, ids=[t[0] for t in INVALID])
def test_invalid_transition(name: str, before: Instance, event: Event, message: str) -> None:
    with pytest.raises(InvalidTransition, match=message):
        apply_event(before, event)


def test_ack_records_who_and_when() -> None:
    inst = apply_event(UNACK, ACK)
    assert (inst.acknowledged_by, inst.acknowledged_at_ms, inst.ack_comment) == ("anna", NOW, "on it")


def test_reactivation_counts_and_forgets_the_ack() -> None:
    inst = apply_event(apply_event(apply_event(UNACK, CLEAR), ACT), CLEAR)
    inst = apply_event(inst, Activate(at_ms=NOW + 5))
    assert inst.activations == 3
    assert inst.last_activated_ms == NOW + 5
    assert inst.cleared_at_ms is None


def test_shelving_expires_by_itself() -> None:
    inst = apply_event(UNACK, SHELVE)
    assert inst.state(SHELVE.until_ms - 1) == "shelved"
    assert inst.state(SHELVE.until_ms) == "active_unacknowledged"
    back = expire_shelving(inst, SHELVE.until_ms)
    assert back.shelved_until_ms is None and back.shelve_reason is None
    assert expire_shelving(inst, SHELVE.until_ms - 1) == inst


@pytest.mark.parametrize(
    ("before", "after", "tell"),
    [
        (None, "active_unacknowledged", True),
        ("active_unacknowledged", "active_acknowledged", True),
        ("active_acknowledged", "cleared", True),
        ("active_unacknowledged", "shelved", False),
        ("active_unacknowledged", "suppressed", False),
        ("shelved", "active_unacknowledged", True),
        ("active_unacknowledged", "active_unacknowledged", False),
        (None, "suppressed", False),
    ],
)
def test_notifiable(before: str | None, after: str, tell: bool) -> None:
    assert notifiable(before, after) is tell  # type: ignore[arg-type]
