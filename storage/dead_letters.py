"""Reading dead letters back: the filter and the row both query backends answer with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

REASON_PART: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""A reason code or field name as used in filters (``out_of_range``, ``sinr_db``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterFilter:
    """Which dead letters to read (the scope gives parks, gateway and time window).

    Attributes:
        code: the reason code (``out_of_range``), or None for every reason.
        field: with ``code``, the field named right after it (``out_of_range: sinr_db=...``).
        limit, offset: the page, newest first.
    """

    code: str | None = None
    field: str | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        for part in (self.code, self.field):
            if part is not None and not REASON_PART.fullmatch(part):
                raise ValueError(f"invalid reason code or field {part[:60]!r}: use a-z 0-9 _")
        if self.field is not None and self.code is None:
            raise ValueError("a field filter needs a code")

    @property
    def prefix(self) -> str | None:
        """What a matching reason starts with (only ``[a-z0-9_:␠]``: safe in SQL and regexes)."""
        if self.code is None:
            return None
        return f"{self.code}: {self.field}" if self.field else f"{self.code}:"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterRow:
    """One stored dead letter."""

    ts_ms: int
    park: str
    gw: str
    topic: str
    reason: str
    raw: str

    @property
    def code(self) -> str:
        """The reason's code: the text before the first colon (older reasons may have none)."""
        head, sep, _ = self.reason.partition(":")
        return head if sep and REASON_PART.fullmatch(head) else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts_ms": self.ts_ms,
            "park": self.park,
            "gw": self.gw,
            "topic": self.topic,
            "code": self.code,
            "reason": self.reason,
            "raw": self.raw,
        }
