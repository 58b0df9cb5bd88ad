"""The loss ledger: per-gateway batch sequence accounting (received, missing, duplicated, late).

A gateway numbers its batches 0, 1, 2, ... and keeps the number of a batch it re-sends. Seeing
``last + 1`` is the normal case; a jump counts the skipped numbers as missing; a number at or
below the last one is a duplicate when it was seen before, or a late arrival of a batch counted
missing (which then is no longer missing). A number more than :data:`RESTART_WINDOW` ahead of
or behind the last one is a *restart* of the sequence (a gateway that lost its counter, or a
faulty or hostile one): it is counted in ``restarts`` and the ledger continues from it, instead
of counting ~10^18 batches missing. The ledger is pure bookkeeping: the service stores
snapshots of changed gateways with each write batch and reloads the latest ones at start-up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from ingest.model import LedgerRow
from storage.ledger_snapshot import LedgerSnapshot

Outcome = Literal["first", "next", "gap", "duplicate", "late", "restart"]

RESTART_WINDOW: Final = 1_000_000
"""Largest jump (forwards or back) of a gateway's sequence number still counted as batches
missing or late; a gateway publishing one batch a second needs 11 days of outage to get there."""


@dataclass(slots=True)
class _Gateway:
    park: str
    received: int = 0
    missing: int = 0
    duplicated: int = 0
    late: int = 0
    last_seq: int = -1
    restarts: int = 0
    seen: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)


class LossLedger:
    """Sequence accounting for every gateway.

    Args:
        window: how many recent sequence numbers per gateway are remembered to tell a
            duplicate from a late batch.
        restart_window: a jump of more than this many numbers is a restart of the sequence.
        ingester: this ingester's id, stored with its snapshots. With a shared subscription
            each ingester counts only the batches it received; readers add the ingesters'
            ledgers up (:func:`storage.query.merge_ledger`).
    """

    def __init__(
        self, window: int = 4096, *, ingester: str = "", restart_window: int = RESTART_WINDOW
    ) -> None:
        if restart_window < 1:
            raise ValueError(
                f"restart_window must be at least 1 (the next number is no restart), not {restart_window}"
            )
        self._window = window
        self._restart_window = restart_window
        self.ingester = ingester
        self._gws: dict[str, _Gateway] = {}
        self._changed: set[str] = set()

    def load(self, snapshots: Iterable[LedgerSnapshot]) -> None:
        """Resume from this ingester's stored snapshots (at start-up).

        Snapshots of other ingesters are theirs to resume. One from a version that did not
        record the ingester is taken over when this ingester has none of its own for the gateway.
        """
        own = [s for s in snapshots if s.ingester == self.ingester]
        have = {s.gw for s in own}
        legacy = [s for s in snapshots if s.ingester is None and s.gw not in have]
        for s in [*legacy, *own]:
            self._gws[s.gw] = _Gateway(
                park=s.park,
                received=s.received,
                missing=s.missing,
                duplicated=s.duplicated,
                late=s.late,
                last_seq=s.last_seq,
                restarts=s.restarts,
            )

    def _remember(self, g: _Gateway, seq: int) -> None:
        g.seen.add(seq)
        g.order.append(seq)
        if len(g.order) > self._window:
            g.seen.discard(g.order.popleft())

    def observe(self, park: str, gw: str, seq: int) -> Outcome:
        """Account for one batch of ``gw`` numbered ``seq``."""
        g = self._gws.get(gw)
        self._changed.add(gw)
        if g is None:
            g = self._gws[gw] = _Gateway(park=park)
        g.park = park
        last = g.last_seq
        if seq == last + 1 and last >= 0:
            # The common case (the next batch) first, with the window's memory inline.
            g.received += 1
            g.last_seq = seq
            g.seen.add(seq)
            order = g.order
            order.append(seq)
            if len(order) > self._window:
                g.seen.discard(order.popleft())
            return "next"
        outcome: Outcome
        if last < 0:
            outcome = "first"
        elif abs(seq - last) > self._restart_window:
            g.restarts += 1
            g.seen.clear()
            g.order.clear()
            outcome = "restart"
        elif seq > last:
            g.missing += seq - last - 1
            outcome = "gap"
        elif seq in g.seen or g.missing == 0:
            # Nothing is missing, so an old number can only be a re-sent batch (this also
            # covers redeliveries after a restart, when the recent-number memory is empty).
            g.duplicated += 1
            return "duplicate"
        else:
            g.missing -= 1
            g.late += 1
            g.received += 1
            self._remember(g, seq)
            return "late"
        g.received += 1
        g.last_seq = seq
        self._remember(g, seq)
        return outcome

    def last_seq(self, gw: str) -> int:
        """The highest sequence number counted for ``gw`` (-1: none), e.g. resumed from a snapshot."""
        g = self._gws.get(gw)
        return -1 if g is None else g.last_seq

    def drain(self, now_ms: int) -> list[LedgerRow]:
        """Snapshots of the gateways changed since the last drain."""
        rows = []
        for gw in sorted(self._changed):
            g = self._gws[gw]
            rows.append(
                LedgerRow(
                    ts_ms=now_ms,
                    park=g.park,
                    gw=gw,
                    received=g.received,
                    missing=g.missing,
                    duplicated=g.duplicated,
                    late=g.late,
                    last_seq=g.last_seq,
                    ingester=self.ingester,
                    restarts=g.restarts,
                )
            )
        self._changed.clear()
        return rows

    def totals(self) -> dict[str, dict[str, int]]:
        """Counter name → gateway → value (for ``/metrics``)."""
        out: dict[str, dict[str, int]] = {
            "received": {},
            "missing": {},
            "duplicated": {},
            "late": {},
            "restarts": {},
        }
        for gw, g in self._gws.items():
            out["restarts"][gw] = g.restarts
            out["received"][gw] = g.received
            out["missing"][gw] = g.missing
            out["duplicated"][gw] = g.duplicated
            out["late"][gw] = g.late
        return out
