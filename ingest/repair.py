"""Gap repair, ingester side: tell each gateway which of its batches are durably stored.

A sequence number is noted when a telemetry message is processed (:meth:`ConfirmOutbox.received`)
and becomes confirmable only when the message is acknowledged to the broker
(:meth:`ConfirmOutbox.stored`), which the service does after the sink wrote the batch or the disk
spool holds it: a confirm never runs ahead of durability. :meth:`ConfirmOutbox.run` publishes a
contract ``Confirm`` (inclusive ranges) on the gateway's ``down/confirm`` topic at most once per
``interval_s`` per gateway, QoS 1.

Each ingester confirms only what it stored itself; the gateway combines the confirms of every
ingester on a shared subscription and decides what to resend (see :mod:`edge_agent.confirm` for
why the decision is the gateway's). A confirm that cannot be published (broker down) stays
pending; one lost on the way costs the gateway a resend, which the stores deduplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from contract.codec import encode
from contract.errors import ContractError
from contract.messages import MAX_CONFIRM_RANGES, Confirm
from contract.topics import topic_for

log = logging.getLogger(__name__)

MAX_PENDING_SEQS: Final = 1_000_000
"""Bound on the sequence numbers held for confirms; beyond it the oldest gateways' are dropped
(counted): the gateways resend those batches, nothing is lost."""


Note = tuple[tuple[str, str], int]
"""``((park, gw), seq)``: the batch a message carried."""


class Confirmable(Protocol):
    """A received message: the outbox notes its batch on it until it is stored."""

    confirm: Note | None


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering ``seqs`` (duplicates allowed)."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


class ConfirmOutbox:
    """Per-gateway stored sequence numbers waiting to be confirmed.

    Args:
        root: topic root.
        ingester: this ingester's id, sent as ``by``.
        interval_s: at most one confirm per gateway this often.
        publish: sends ``(topic, payload)`` with QoS 1; False when it cannot now (not connected).
        enabled: False turns every method into a no-op (``[ingest] confirm = false``).
    """

    def __init__(
        self,
        *,
        root: str,
        ingester: str,
        interval_s: float,
        publish: Callable[[str, bytes], bool],
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.root = root
        self.ingester = ingester
        self.interval_s = interval_s
        self._publish = publish
        # A received batch is noted on its message (paho's mid cannot identify it: 0 for QoS 0,
        # and reused per connection), which the service holds until its ack.
        self._stored: dict[tuple[str, str], set[int]] = {}
        self._pending_seqs = 0
        self._ready = asyncio.Event()
        self.published = 0
        """Confirm messages published."""
        self.dropped_seqs = 0
        """Sequence numbers not confirmed because the pending bound was reached."""

    def received(self, msg: Confirmable, park: str, gw: str, seq: int) -> None:
        """Note the batch ``seq`` of ``gw`` carried by ``msg`` (not yet durable)."""
        if self.enabled:
            msg.confirm = ((park, gw), seq)

    def stored(self, messages: Iterable[Confirmable]) -> None:
        """The messages are durably stored (or spooled): their batches become confirmable."""
        if not self.enabled:
            return
        stored = self._stored
        added = 0
        for msg in messages:
            noted = msg.confirm
            if noted is None:
                continue
            msg.confirm = None
            key, seq = noted
            seqs = stored.get(key)
            if seqs is None:
                seqs = stored[key] = set()
            before = len(seqs)
            seqs.add(seq)
            added += len(seqs) - before
        self._pending_seqs += added
        while self._pending_seqs > MAX_PENDING_SEQS and self._stored:
            key = next(iter(self._stored))
            n = len(self._stored.pop(key))
            self._pending_seqs -= n
            self.dropped_seqs += n
        if self._stored:
            self._ready.set()

    @property
    def pending(self) -> int:
        """Sequence numbers stored and not yet confirmed."""
        return self._pending_seqs

    def flush(self) -> int:
        """Publish one confirm per gateway with stored numbers; return the messages published."""
        sent = 0
        for key in list(self._stored):
            park, gw = key
            ranges = to_ranges(self._stored[key])
            try:
                topic = topic_for(park, gw, "confirm", root=self.root)
            except ContractError:
                # The ids came from a parsed topic, so this cannot happen; drop rather than loop.
                self._pending_seqs -= len(self._stored.pop(key))
                continue
            for i in range(0, len(ranges), MAX_CONFIRM_RANGES):
                chunk = ranges[i : i + MAX_CONFIRM_RANGES]
                payload = encode(Confirm(v=1, gw=gw, stored=chunk, by=self.ingester[:128] or None))
                if not self._publish(topic, payload):
                    # Keep what was not sent; the next flush tries again.
                    self._stored[key] = {s for a, b in ranges[i:] for s in range(a, b + 1)}
                    self._pending_seqs = sum(len(v) for v in self._stored.values())
                    return sent
                sent += 1
                self.published += 1
            self._pending_seqs -= len(self._stored.pop(key))
        return sent

    async def run(self) -> None:
        """Publish pending confirms, at most once per ``interval_s``."""
        while self.enabled:
            await self._ready.wait()
            self._ready.clear()
            self.flush()
            if self._stored:
                self._ready.set()
            await asyncio.sleep(self.interval_s)
