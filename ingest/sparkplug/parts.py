"""Mapped Sparkplug readings → write-batch parts, through the contract decoder.

The readings leave :mod:`ingest.sparkplug.mapping` as plain data. Here they are encoded as a
contract batch and decoded by :func:`contract.codec.decode_batch`, so a Sparkplug value meets
exactly the checks of a published contract batch (ranges, enums, ids, the clock window) and a
bad one becomes the same dead letter, with the same reason, while the rest is kept.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from contract.codec import decode_batch
from contract.errors import ContractError
from contract.limits import MAX_READINGS_PER_BATCH
from ingest.enrich import CellLocator
from ingest.model import DeadLetter, Part, WriteBatch
from ingest.mqtt import Message


class DeadFn(Protocol):
    """Makes a dead letter (and counts it): the ingester's ``_dead``."""

    def __call__(
        self, msg: Message, park: str, gw: str, reason: str, raw: bytes, cls: str, key: str = ""
    ) -> DeadLetter: ...


class PartBuilder:
    """Validates mapped readings and appends them to a write batch.

    Args:
        locator: H3 cells of the readings (the gateway's position).
        dead: the ingester's dead-letter maker.
        max_age_ms: oldest reading accepted (None: any age).
    """

    def __init__(self, *, locator: CellLocator, dead: DeadFn, max_age_ms: int | None) -> None:
        self._locator = locator
        self._dead = dead
        self._max_age_ms = max_age_ms

    def add(
        self,
        msg: Message,
        *,
        park: str,
        gw: str,
        readings: list[dict[str, Any]],
        seq: int,
        sent_ms: int,
        replay: bool,
        out: WriteBatch,
    ) -> int:
        """Append the valid readings as parts (and the invalid ones as dead letters); return how
        many were valid."""
        stored = 0
        for start in range(0, len(readings), MAX_READINGS_PER_BATCH):
            chunk = readings[start : start + MAX_READINGS_PER_BATCH]
            body = msgspec.json.encode({"v": 1, "gw": gw, "seq": seq, "readings": chunk})
            try:
                decoded = decode_batch(body, now_ms=msg.received_ms, max_age_ms=self._max_age_ms)
            except ContractError as exc:
                out.dead_letters.append(self._dead(msg, park, gw, exc.reason, body, "payload"))
                continue
            for rej in decoded.rejected:
                cls = "field" if rej.dropped else "reading"
                out.dead_letters.append(self._dead(msg, park, gw, rej.reason, rej.raw, cls, rej.key))
            if decoded.readings:
                cells = self._locator.cells(gw, decoded.readings)
                out.parts.append(
                    Part(
                        park=park, gw=gw, readings=decoded.readings, h3=cells, sent_ms=sent_ms, replay=replay
                    )
                )
                stored += len(decoded.readings)
        return stored
