"""``parkwatch serve``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from settings.ports import PortBusyError, listen_socket, port_arg

HELP = (
    "Run one park (or a few) on this machine: ingester, API and web dashboard in one process on "
    "DuckDB, optionally with the embedded MQTT broker."
)

EPILOG = """\
settings come from --config (TOML, see config/parkwatch.toml) and PARKWATCH_* variables, e.g.
PARKWATCH_API__PORT=9000. The actions below read the same file, and may run while serve does:
  parkwatch serve --config FILE key-create --name you --role admin
  parkwatch serve --config FILE mosquitto-files --out-dir DIR
SIGTERM or Ctrl-C stops intake, flushes and exits.
"""


def register(parser: argparse.ArgumentParser) -> None:
    from api.cli import register_actions

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (PARKWATCH_* variables override it); see config/parkwatch.toml",
    )
    parser.add_argument("--host", help="API listen address (overrides [api] host)")
    parser.add_argument(
        "--port",
        type=port_arg,
        help="API listen port, 0 = any free port (overrides [api] port, default 8080)",
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the settings, print them (secrets hidden) and exit"
    )
    register_actions(parser, settings_of=_api_settings, before_broker_files=_register_ingest_account)
    parser.set_defaults(func=_run)


def _load(args: argparse.Namespace) -> Any:
    from settings.errors import ConfigError
    from settings.loader import load_settings
    from settings.serve import ServeSettings

    try:
        return load_settings(ServeSettings, args.config)
    except ConfigError as exc:
        print(f"parkwatch serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _api_settings(args: argparse.Namespace) -> Any:
    return _load(args).api_settings()


def _register_ingest_account(args: argparse.Namespace, registry: Any) -> None:
    from parkwatch.serve import register_ingest_account

    register_ingest_account(_load(args), registry)


def _run(args: argparse.Namespace) -> int:
    from ingest.cli import credential_problems
    from parkwatch.serve import run_serve
    from settings.errors import ConfigError
    from settings.runtime import setup_logging

    settings = _load(args)
    for problem in credential_problems(settings.ingest_settings(), args.config):
        print(f"parkwatch serve: {problem}", file=sys.stderr)
        return 2
    if settings.api.workers != 1:
        where = f" in {args.config}" if args.config else ""
        print(
            f"parkwatch serve: [api] workers is {settings.api.workers}{where}, but the API runs inside this "
            "one process: set it to 1 (more API processes need InfluxDB and `parkwatch api`)",
            file=sys.stderr,
        )
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
    host = args.host or settings.api.host
    port = settings.api.port if args.port is None else args.port
    option = "--port" if args.port is not None else "--port (or [api] port)"
    try:
        sock = listen_socket(host, port, what="API", option=option)
    except PortBusyError as exc:
        print(f"parkwatch serve: {exc}", file=sys.stderr)
        return 2
    try:
        return run_serve(settings, sock, config=args.config or "")
    except ConfigError as exc:
        print(f"parkwatch serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The embedded broker's port, or the store's directory.
        print(f"parkwatch serve: {exc}; pass another [embedded_broker] port or fix the path", file=sys.stderr)
        return 1
