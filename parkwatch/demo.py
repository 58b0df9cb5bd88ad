"""The one-command demo. It starts every part of the platform that this build contains and says
which parts it started."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from parkwatch.embedded_broker import EmbeddedBroker


async def run_demo(*, duration_s: float | None, data_dir: str | None, mqtt_port: int) -> int:
    """Run until Ctrl-C or ``duration_s``; return the exit code."""
    with contextlib.ExitStack() as stack:
        root = (
            Path(data_dir)
            if data_dir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parkwatch-")))
        )
        root.mkdir(parents=True, exist_ok=True)
        broker = EmbeddedBroker(port=mqtt_port)
        await broker.start()
        print(f"parkwatch demo: data in {root}")
        print(f"  MQTT broker (embedded)   mqtt://127.0.0.1:{mqtt_port}")
        print("  simulator, edge agents, ingester, API: not in this build yet")
        print("Press Ctrl-C to stop." if duration_s is None else f"Stopping after {duration_s:g} s.")
        try:
            if duration_s is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration_s)
        finally:
            await broker.aclose()
    return 0
