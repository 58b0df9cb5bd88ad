"""The life of one alarm instance, as a pure state machine (ISA-18.2 / OPC UA Part 9).

An instance is created when its rule's condition becomes true for a source (a machine, a
gateway, a park) and closes when the condition is gone *and* an operator has acknowledged it.
Its state is a few orthogonal facts, and the one ``state`` the API shows is derived from them:

| facts | ``state`` |
|---|---|
| out of service | ``out_of_service`` (an operator took the source out of service) |
| suppressed (by design) | ``suppressed`` (e.g. the machine is in planned maintenance, or its gateway is offline) |
| shelved until a time | ``shelved`` (an operator hid it, with a reason, until the time) |
| condition true, not acknowledged | ``active_unacknowledged`` |
| condition true, acknowledged | ``active_acknowledged`` |
| condition gone, not acknowledged | ``cleared_unacknowledged`` |
| condition gone, acknowledged | ``cleared`` (closed; a new activation opens a new instance) |

Shelving, suppression and out of service hide an alarm (no notification, not counted as
standing) but it keeps following its condition, so unshelving shows the true state.

:func:`apply` takes an instance and an event and returns the new instance, or raises
:class:`InvalidTransition` with a message saying what the operator can do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

Priority = Literal["low", "medium", "high", "critical"]
PRIORITIES: Final[tuple[Priority, ...]] = ("low", "medium", "high", "critical")
State = Literal[
    "active_unacknowledged",
    "active_acknowledged",
    "cleared_unacknowledged",
    "cleared",
    "shelved",
    "suppressed",
    "out_of_service",
]
STATES: Final[tuple[State, ...]] = (
    "active_unacknowledged",
    "active_acknowledged",
    "cleared_unacknowledged",
    "cleared",
    "shelved",
    "suppressed",
    "out_of_service",
)
MAX_SHELVE_MS: Final = 7 * 86_400_000
"""The longest shelving: a shelved alarm always comes back on its own."""


class InvalidTransition(ValueError):
    """The event does not apply to the instance in its current state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One alarm instance. Times are epoch milliseconds."""

    rule_id: str
    park: str
    source: str
    priority: Priority
    message: str
    raised_at_ms: int
    active: bool = True
    acked: bool = False
    cleared_at_ms: int | None = None
    acknowledged_by: str | None = None
    acknowledged_at_ms: int | None = None
    ack_comment: str | None = None
    shelved_until_ms: int | None = None
    shelve_reason: str | None = None
    shelved_by: str | None = None
    suppressed_by: str | None = None
    """Why the alarm is suppressed by design (``None``: not suppressed)."""
    out_of_service: bool = False
    activations: int = 1
    last_activated_ms: int | None = None
    """How often the condition became true while this instance was open (flapping shows here)."""

    @property
    def closed(self) -> bool:
        """Condition gone and acknowledged: nothing is left to do."""
        return not self.active and self.acked and not self.out_of_service

    def state(self, now_ms: int) -> State:
        """The state the API shows at ``now_ms`` (see the module docstring)."""
        if self.out_of_service:
            return "out_of_service"
        if self.suppressed_by is not None:
            return "suppressed"
        if self.shelved_until_ms is not None and now_ms < self.shelved_until_ms:
            return "shelved"
        if self.active:
            return "active_acknowledged" if self.acked else "active_unacknowledged"
        return "cleared" if self.acked else "cleared_unacknowledged"


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Activate:
    """The condition became true again (the instance is still open)."""

    at_ms: int
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Clear:
    """The condition is gone."""

    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledge:
    by: str
    at_ms: int
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Shelve:
    by: str
    at_ms: int
    until_ms: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unshelve:
    by: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppress:
    """Suppression by design starts (``reason`` names the cause) or ends (``reason=None``)."""

    reason: str | None
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetOutOfService:
    by: str
    at_ms: int
    out_of_service: bool


Event = Activate | Clear | Acknowledge | Shelve | Unshelve | Suppress | SetOutOfService


def raise_alarm(
    *, rule_id: str, park: str, source: str, priority: Priority, message: str, at_ms: int
) -> Instance:
    """A new instance: its condition just became true."""
    return Instance(
        rule_id=rule_id, park=park, source=source, priority=priority, message=message, raised_at_ms=at_ms
    )


def apply(inst: Instance, event: Event) -> Instance:
    """The instance after ``event``.

    Raises:
        InvalidTransition: the event does not apply (a closed alarm, acknowledging twice,
            shelving for a past or too distant time, unshelving an alarm that is not shelved).
    """
    if inst.closed:
        raise InvalidTransition("the alarm is closed (cleared and acknowledged): nothing more to do")
    match event:
        case Activate(at_ms=at, message=msg):
            if inst.active:
                return replace(inst, message=msg or inst.message)
            # Re-activation before anyone acknowledged the clear: the same instance, unacknowledged.
            return replace(
                inst,
                active=True,
                acked=False,
                cleared_at_ms=None,
                acknowledged_by=None,
                acknowledged_at_ms=None,
                ack_comment=None,
                message=msg or inst.message,
                activations=inst.activations + 1,
                last_activated_ms=at,
            )
        case Clear(at_ms=at):
            return inst if not inst.active else replace(inst, active=False, cleared_at_ms=at)
        case Acknowledge(by=by, at_ms=at, comment=comment):
            if inst.acked:
                raise InvalidTransition(
                    f"the alarm was acknowledged already by {inst.acknowledged_by}: nothing to do"
                )
            return replace(inst, acked=True, acknowledged_by=by, acknowledged_at_ms=at, ack_comment=comment)
        case Shelve(by=by, at_ms=at, until_ms=until, reason=reason):
            if until <= at:
                raise InvalidTransition("shelve until a time in the future: give minutes >= 1")
            if until - at > MAX_SHELVE_MS:
                raise InvalidTransition(f"shelve for at most {MAX_SHELVE_MS // 60_000} minutes")
            if not reason.strip():
                raise InvalidTransition("give a reason for shelving (it is kept with the alarm)")
            return replace(inst, shelved_until_ms=until, shelve_reason=reason, shelved_by=by)
        case Unshelve(at_ms=at):
            if inst.shelved_until_ms is None or at >= inst.shelved_until_ms:
                raise InvalidTransition("the alarm is not shelved: nothing to unshelve")
            return replace(inst, shelved_until_ms=None, shelve_reason=None, shelved_by=None)
        case Suppress(reason=reason):
            return replace(inst, suppressed_by=reason)
        case SetOutOfService(out_of_service=oos):
            return replace(inst, out_of_service=oos)
    raise InvalidTransition(f"unknown event {event!r}")  # pragma: no cover - the union is exhaustive


def expire_shelving(inst: Instance, now_ms: int) -> Instance:
    """Drop a shelving whose time has passed (the alarm shows its true state again)."""
    if inst.shelved_until_ms is not None and now_ms >= inst.shelved_until_ms:
        return replace(inst, shelved_until_ms=None, shelve_reason=None, shelved_by=None)
    return inst


def notifiable(before: State | None, after: State) -> bool:
    """Whether a change of the shown state is worth telling someone: every visible change, never
    a change into or out of hiding (shelved, suppressed, out of service) alone."""
    return before != after and after not in ("shelved", "suppressed", "out_of_service")
