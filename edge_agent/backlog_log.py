"""What the agent says about its disk buffer: buffering started, backlog replay, drained.

A pure state machine fed with the connection state and the buffer fill (once per sealing
round); it returns the line to log, or None. Transitions are said at once; progress while
buffering or replaying at most once per ``every_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["starting", "live", "buffering", "replaying"]


@dataclass(slots=True)
class BacklogLog:
    """Turns observations of the uplink and the buffer into rate-limited log lines.

    Args:
        every_s: at most one progress line per this many seconds.
    """

    every_s: float = 60.0
    phase: Phase = "starting"
    _last_said_s: float = 0.0
    _since_s: float = 0.0
    _replay_from: int = 0
    _seen: bool = False

    def observe(
        self, *, now_s: float, connected: bool, batches: int, readings: int, fill_pct: float
    ) -> str | None:
        """The line to log for this observation, if any.

        Args:
            now_s: monotonic time.
            connected: whether the MQTT connection is up.
            batches, readings: sealed batches (and their readings) waiting for their PUBACK.
            fill_pct: buffer fill in percent of its cap.
        """
        if not self._seen:
            self._seen = True
            self._enter(self.phase, now_s)
        held = f"{batches} batch(es), {readings} reading(s) held, buffer {fill_pct:g} % full"
        if not connected:
            if self.phase in ("live", "replaying"):
                self._enter("buffering", now_s)
                return f"uplink down: buffering readings on disk ({held})"
            # Before the first connection nothing was lost yet: say it only if it lasts.
            if now_s - self._last_said_s >= self.every_s:
                self._last_said_s = now_s
                return f"still buffering for {now_s - self._since_s:.0f} s ({held})"
            return None
        if self.phase in ("starting", "buffering"):
            if batches > 1:
                self._enter("replaying", now_s)
                self._replay_from = batches
                return f"uplink up: replaying a backlog of {batches} batch(es) ({readings} reading(s)), oldest first"
            was = self.phase
            down_s = now_s - self._since_s
            self._enter("live", now_s)
            return None if was == "starting" else f"uplink up after {down_s:.0f} s: nothing to replay"
        if self.phase == "replaying":
            if batches <= 1:
                sent = self._replay_from
                took = now_s - self._since_s
                self._enter("live", now_s)
                return f"backlog drained: {sent} batch(es) replayed in {took:.0f} s"
            if now_s - self._last_said_s >= self.every_s:
                self._last_said_s = now_s
                return f"replaying backlog: {batches} batch(es) left of {self._replay_from}"
        return None

    def _enter(self, phase: Phase, now_s: float) -> None:
        self.phase = phase
        self._since_s = now_s
        self._last_said_s = now_s
