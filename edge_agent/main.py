"""``parkwatch edge run``: load the settings, set up logging and signals, run the agent."""

from __future__ import annotations

import asyncio
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

from edge_agent.agent import Agent
from settings.edge import EdgeSettings
from settings.errors import ConfigError
from settings.loader import load_settings
from settings.runtime import __version__, setup_logging


def load(path: str | None) -> tuple[EdgeSettings, dict[str, Any]]:
    """The settings and the file's table (remote configs are merged over the latter).

    Raises:
        ConfigError: missing file, bad TOML or an invalid key (the message names it).
    """
    settings = load_settings(EdgeSettings, path)
    table: dict[str, Any] = {}
    if path:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return settings, table


async def serve(settings: EdgeSettings, table: dict[str, Any]) -> None:
    """Run the agent until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(settings, file_config=table, version=__version__)
    await agent.run(stop)


def run(config: str | None) -> int:
    """Entry of ``parkwatch edge run``; returns the exit code."""
    try:
        settings, table = load(config)
    except ConfigError as exc:
        print(
            f"error: {exc}\nfix the settings file (see config/edge.toml) or run `parkwatch edge init`.",
            file=sys.stderr,
        )
        return 2
    setup_logging(settings.logging.level, settings.logging.format)
    try:
        asyncio.run(serve(settings, table))
    except OSError as exc:
        print(f"error: {exc}\ncheck [agent] state_dir and [buffer] path are writable.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1] if len(sys.argv) > 1 else None))
