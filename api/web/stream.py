"""Server-Sent Events for the live dashboard.

Every ``interval_s`` the stream takes a cheap snapshot (the fleet's newest data) and sends it; the
page refreshes its panels when the snapshot's ``version`` changes. A comment line keeps idle
connections (and proxies) alive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any


def sse_event(data: dict[str, Any], *, event: str = "snapshot") -> bytes:
    """One SSE frame."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def event_stream(
    snapshot: Callable[[], dict[str, Any]],
    *,
    interval_s: float = 2.0,
    max_events: int | None = None,
) -> AsyncIterator[bytes]:
    """Yield SSE frames of ``snapshot()`` (run in a worker thread: it queries the database)."""
    sent = 0
    yield b": parkwatch live stream\n\n"
    while max_events is None or sent < max_events:
        snap = await asyncio.to_thread(snapshot)
        snap.setdefault("now_ms", int(time.time() * 1000))
        yield sse_event(snap)
        sent += 1
        await asyncio.sleep(interval_s)
