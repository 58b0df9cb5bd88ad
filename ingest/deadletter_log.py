"""A rate-limited WARNING that sums up dead letters by reason key.

``12 readings dead-lettered in the last minute: out_of_range:sinr_db ×9, too_old:ts ×3``: one
line per interval instead of one per reading, so that a noisy gateway is visible at the default
log level without flooding it.
"""

from __future__ import annotations

import logging
from collections import Counter

log = logging.getLogger("ingest.dead_letters")

_SHOWN = 8
"""Reason keys named in one summary line; the rest are summed up as "… and N more"."""


def _period(interval_s: float) -> str:
    if interval_s == 60:
        return "the last minute"
    return f"the last {interval_s:g} s"


class DeadLetterSummary:
    """Counts dead letters by reason key and logs them at most once per ``interval_s``.

    Args:
        interval_s: the shortest time between two summaries (0: never log).
        started_s: the clock reading the first interval starts at.
    """

    def __init__(self, interval_s: float, started_s: float) -> None:
        self.interval_s = interval_s
        self._since = started_s
        self._counts: Counter[str] = Counter()

    def note(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    def tick(self, now_s: float) -> str | None:
        """Log (and return) the summary when an interval has passed and something was counted."""
        if not self.interval_s or now_s - self._since < self.interval_s:
            return None
        self._since = now_s
        if not self._counts:
            return None
        total = sum(self._counts.values())
        ranked = self._counts.most_common()
        parts = [f"{key} ×{n}" for key, n in ranked[:_SHOWN]]
        if len(ranked) > _SHOWN:
            parts.append(f"… and {len(ranked) - _SHOWN} more reasons")
        line = f"{total} readings dead-lettered in {_period(self.interval_s)}: {', '.join(parts)}"
        self._counts.clear()
        log.warning("%s", line)
        return line
