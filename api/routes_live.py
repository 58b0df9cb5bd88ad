"""Live updates for the built-in dashboard: ``GET /api/v1/stream`` (Server-Sent Events)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api import models
from api.deps import Ctx, Viewer
from api.params import ParkQ
from api.web.stream import event_stream

router = APIRouter(prefix="/api/v1")


@router.get(
    "/stream",
    tags=["live"],
    summary="Live fleet snapshots as Server-Sent Events; the dashboard refreshes when `version` changes.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`data:` lines of JSON snapshots: version, gateways, online, last_seen_ms, batches_received.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
def stream(
    p: Viewer,
    ctx: Ctx,
    park: ParkQ = None,
    interval_s: Annotated[float, Query(ge=0.5, le=60.0, description="Seconds between events.")] = 2.0,
    max_events: Annotated[
        int,
        Query(ge=1, le=3600, description="Events before the server ends the stream (clients reconnect)."),
    ] = 900,
) -> StreamingResponse:
    now = datetime.now(UTC)
    sc = ctx.scope(p, park, now - timedelta(days=1), now + timedelta(minutes=10))

    def snapshot() -> dict[str, Any]:
        rows = ctx.services.fleet.gateways(sc, int(time.time() * 1000))
        last_seen = max((r.last_seen_ms or 0 for r in rows), default=0)
        received = sum(r.loss.received or 0 for r in rows if isinstance(r.loss, models.Loss))
        online = sum(1 for r in rows if r.online)
        return {
            "version": f"{last_seen}:{received}:{online}",
            "gateways": len(rows),
            "online": online,
            "last_seen_ms": last_seen,
            "batches_received": received,
        }

    return StreamingResponse(
        event_stream(snapshot, interval_s=interval_s, max_events=max_events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
