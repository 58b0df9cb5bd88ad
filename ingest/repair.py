"""Gap repair, ingester side: tell each gateway which of its batches are durably stored.

A sequence number is noted, with the write batch that carries its readings, when a telemetry
message is processed (:meth:`ConfirmOutbox.received`, into that batch's :data:`Notes`) and becomes
confirmable only when the batch's messages are acknowledged to the broker
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
from typing import Final

from contract.codec import encode
from contract.errors import ContractError
from contract.messages import MAX_CONFIRM_RANGES, Confirm
from contract.topics import topic_for

log = logging.getLogger(__name__)

MAX_PENDING_SEQS: Final = 1_000_000
"""Bound on the sequence numbers held for confirms; beyond it the oldest gateways' are dropped
(counted): the gateways resend those batches, nothing is lost."""


Notes = dict[tuple[str, str], list[int]]
"""``(park, gw)`` → sequence numbers of the gateway's batches received into one write batch.

A write batch's messages are acknowledged together, after the write: one note list per write
batch, not one note per message (paho's mid cannot identify a batch: 0 for QoS 0, and reused
per connection)."""


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
        self._stored: dict[tuple[str, str], set[int]] = {}
        self._pending_seqs = 0
        self._ready = asyncio.Event()
        self.published = 0
        """Confirm messages published."""
        self.dropped_seqs = 0
        """Sequence numbers not confirmed because the pending bound was reached."""

    def received(self, notes: Notes, park: str, gw: str, seq: int) -> None:
        """Note the batch ``seq`` of ``gw`` in ``notes``, those of one write batch (not yet durable)."""
        if self.enabled:
            key = (park, gw)
            seqs = notes.get(key)
            if seqs is None:
                notes[key] = [seq]
            else:
                seqs.append(seq)

    def stored(self, notes: Notes) -> None:
        """The write batch of ``notes`` is durably stored (or spooled): its batches become confirmable."""
        if not self.enabled or not notes:
            return
        stored = self._stored
        added = 0
        for key, seqs in notes.items():
            have = stored.get(key)
            if have is None:
                have = stored[key] = set()
            before = len(have)
            have.update(seqs)
            added += len(have) - before
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
