"""Gap repair on the gateway: the ingesters' confirms decide what the buffer forgets and resends.

After its PUBACK a batch stays in the disk buffer, marked published, until an ingester reports it
durably stored (``down/confirm``, contract ``Confirm``). A broker that crashes before saving its
state forgets batches it already acknowledged; no ingester will ever confirm those, and the
gateway resends them with their original ``seq`` (the loss ledger counts them late, not twice).

Why the gateway decides what is lost, and not the ingester: with a shared subscription each
ingester receives only part of a gateway's batches, so no single ingester can tell a batch that
another ingester stored from one that was lost; asking the ingester to name "missing" numbers
would re-request the other ingesters' batches forever. Each ingester confirms only what it
stored, and the gateway is the one place where every ingester's confirms meet. A published batch
counts as lost when it is still unconfirmed ``grace_s`` after a confirm of a *later* number
arrived: a session delivers in order and an ingester confirms in the order it writes, so a later
confirm means the earlier batch had its turn; the grace covers ingesters lagging each other. A
lost or late confirm only costs a resend, which the stores deduplicate (and which is confirmed
again). A batch never confirmed (every ingester down for good, or ingesters that do not confirm)
is given up after ``retention_s`` and counted as ``expired``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Final, ParamSpec, TypeVar

from contract.codec import decode_message
from contract.errors import PayloadError
from contract.messages import Confirm
from edge_agent.buffer import DiskBuffer

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_QUEUE_MAX: Final = 1024
"""Confirms waiting to be applied; beyond it they are dropped (counted): only a resend is lost."""


class RepairPlanner:
    """Which published batches are presumed lost (pure; times are monotonic seconds).

    Args:
        grace_s: how long an unconfirmed batch may lag behind a confirmed later one.
    """

    def __init__(self, *, grace_s: float) -> None:
        self.grace_s = grace_s
        self.high = -1
        """The highest sequence number any ingester confirmed (since the agent started)."""
        self._overtaken: dict[int, float] = {}

    def confirmed(self, stored: Sequence[tuple[int, int]]) -> None:
        """Take a confirm's inclusive ranges into account."""
        for _first, last in stored:
            self.high = max(self.high, last)

    def due(self, unconfirmed: Sequence[int], now_s: float) -> list[int]:
        """The published, unconfirmed sequence numbers to resend now.

        ``unconfirmed`` is every published batch still waiting for its confirm. A returned
        number's clock restarts: after its resend it gets another grace period.
        """
        overtaken: dict[int, float] = {}
        out: list[int] = []
        for seq in unconfirmed:
            if seq >= self.high:
                continue
            since = self._overtaken.get(seq, now_s)
            if now_s - since >= self.grace_s:
                out.append(seq)
            else:
                overtaken[seq] = since
        self._overtaken = overtaken
        return out


class GapRepair:
    """Applies confirms to the buffer, resends what stays unconfirmed, expires what is too old.

    Args:
        buffer: the agent's disk buffer.
        executor: where the buffer is touched (one worker thread); ``None``: on the event loop,
            as the agent does (see :mod:`edge_agent.buffer`).
        gateway: this gateway's id; a confirm for another gateway is refused.
        grace_s, retention_s: see :class:`settings.edge.BufferOptions`.
        wake: called after batches were made sendable again (wakes the forwarder).
        clock_s, wall_ms: injectable clocks (monotonic seconds, epoch milliseconds).
    """

    def __init__(
        self,
        buffer: DiskBuffer,
        *,
        executor: Executor | None = None,
        gateway: str,
        grace_s: float,
        retention_s: float,
        wake: Callable[[], None],
        clock_s: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.buffer = buffer
        self.gateway = gateway
        self.retention_ms = int(retention_s * 1000)
        self.planner = RepairPlanner(grace_s=grace_s)
        self._executor = executor
        self._wake = wake
        self._clock_s = clock_s
        self._wall_ms = wall_ms
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_QUEUE_MAX)
        self._check_s = max(0.05, min(grace_s / 4, 5.0))
        self.confirms = 0
        """Confirms applied."""
        self.confirms_refused = 0
        """Confirms that were not a valid ``Confirm`` for this gateway, or overflowed the queue."""
        self.confirmed_batches = 0
        self.resent_batches = 0
        """Batches made sendable again because they stayed unconfirmed (gap repair)."""
        self.expired_readings = 0

    def offer(self, payload: bytes) -> None:
        """Queue a ``down/confirm`` payload (called on the event loop by the MQTT client)."""
        if not payload:
            return
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.confirms_refused += 1

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._executor is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def apply(self, payload: bytes) -> int:
        """Apply one confirm; return how many buffered batches it deleted."""
        try:
            msg = decode_message(payload, Confirm)
        except PayloadError as exc:
            self.confirms_refused += 1
            log.warning("down/confirm refused: %s", exc.reason)
            return 0
        if msg.gw != self.gateway:
            self.confirms_refused += 1
            log.warning("down/confirm for gateway %r refused: this is %r", msg.gw, self.gateway)
            return 0
        self.planner.confirmed(msg.stored)
        deleted = await self._db(self.buffer.confirm, msg.stored)
        self.confirms += 1
        self.confirmed_batches += deleted
        return deleted

    async def check(self) -> int:
        """Requeue the batches presumed lost and expire the too old; return how many were requeued."""
        requeued = 0
        if self.planner.high >= 0:
            unconfirmed = await self._db(self.buffer.unconfirmed_seqs)
            due = self.planner.due(unconfirmed, self._clock_s())
            if due:
                requeued = await self._db(self.buffer.requeue, due)
                self.resent_batches += requeued
                log.warning(
                    "%d published batch(es) never confirmed while later ones were (seq %d..%d): "
                    "resending them",
                    requeued,
                    due[0],
                    due[-1],
                )
                self._wake()
        expired = await self._db(self.buffer.expire, published_before_ms=self._wall_ms() - self.retention_ms)
        if expired:
            self.expired_readings += expired
            log.warning(
                "%d published reading(s) given up unconfirmed after %.0f s (are the ingesters confirming? "
                "see [buffer] hold_until_confirmed)",
                expired,
                self.retention_ms / 1000,
            )
        return requeued

    async def run(self) -> None:
        """Apply confirms as they come and check for lost batches at least every grace/4."""
        while True:
            payload = b""
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_s):
                    payload = await self._queue.get()
            if payload:
                await self.apply(payload)
                while not self._queue.empty():
                    await self.apply(self._queue.get_nowait())
            await self.check()
