"""``parkwatch ingest``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "Run the ingester: MQTT telemetry into InfluxDB or the embedded DuckDB store."

EPILOG = """\
settings come from --config (TOML, see config/ingest.toml) and PARKWATCH_* variables, e.g.
PARKWATCH_BROKER__PORT=1884 or PARKWATCH_SINK__TYPE=influxdb. SIGTERM or Ctrl-C stops intake,
flushes and exits; /metrics is served on [ingest] metrics_host:metrics_port.
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (PARKWATCH_* variables override it)"
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the settings, print them (secrets hidden) and exit"
    )
    parser.set_defaults(func=_run)


def credential_problems(settings: Any, config: str | None) -> list[str]:
    """A user name without a password: a login that cannot succeed, caught before connecting."""
    where = config or "the settings"
    out = []
    for table, section in (("broker", settings.broker), ("sink", settings.sink)):
        user = getattr(section, "username", "")
        if user and not getattr(section, "password", ""):
            out.append(
                f"[{table}] username is {user!r} but its password is empty in {where}: set [{table}] password "
                f"(or PARKWATCH_{table.upper()}__PASSWORD), or remove the username"
            )
    return out


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import gc
    import logging
    import signal

    from ingest.service import Ingester
    from settings import ConfigError, load_settings
    from settings.ingest import IngestSettings
    from settings.runtime import setup_logging

    try:
        settings = load_settings(IngestSettings, args.config)
    except ConfigError as exc:
        print(f"parkwatch ingest: {exc}", file=sys.stderr)
        return 2
    for problem in credential_problems(settings, args.config):
        print(f"parkwatch ingest: {problem}", file=sys.stderr)
        return 2
    if args.check:
        import msgspec

        data = msgspec.to_builtins(settings)
        for section in data.values():
            if isinstance(section, dict):
                for key in ("password", "token"):
                    if section.get(key):
                        section[key] = "***"
        print(msgspec.json.format(msgspec.json.encode(data)).decode())
        return 0
    setup_logging(settings.logging.level, settings.logging.format)
    # Every reading is a GC-tracked struct and a write batch holds tens of thousands of them:
    # with the default thresholds the collector rescans them over and over (validation ran
    # ~40% faster with these settings in bench/ingest.py profiling). Freeze what start-up
    # allocated and collect young objects less often.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    log = logging.getLogger("ingest")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Ingester(settings).run(stop)

    try:
        asyncio.run(main())
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return 0
