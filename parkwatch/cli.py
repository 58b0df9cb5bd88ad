"""The ``parkwatch`` command.

Subcommands live with their packages, in a ``cli`` module that imports only the standard
library at module level, so ``parkwatch edge --help`` works on an edge-only install. Each such
module provides ``HELP`` (one line) and ``register(parser)``, which adds its options and sets
``func`` (a callable taking the parsed arguments and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Final, Literal

from settings.runtime import __version__

CommandName = Literal[
    "serve",
    "demo",
    "ingest",
    "import",
    "park",
    "gateway",
    "sites",
    "alarms",
    "report",
    "api",
    "coverage",
    "sim",
    "edge",
]

SERVER_PACKAGES: Final = frozenset(
    {"amqtt", "duckdb", "numpy", "pyarrow", "h3", "fastapi", "uvicorn", "httpx", "rich", "psutil"}
)
"""Top-level modules of the ``[server]`` extra (for a helpful error on an edge-only install)."""

COMMANDS: Final[dict[CommandName, str]] = {
    "serve": "parkwatch.serve_cli",
    "demo": "parkwatch.demo_cli",
    "ingest": "ingest.cli",
    "import": "ingest.import_cli",
    "park": "api.park_cli",
    "gateway": "api.gateway_cli",
    "sites": "api.sites_cli",
    "report": "api.report_cli",
    "alarms": "api.alarms_cli",
    "api": "api.cli",
    "coverage": "api.coverage_cli",
    "sim": "firmware_sim.cli",
    "edge": "edge_agent.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parkwatch",
        description="IoT telemetry for smart industrial parks: factory metrics, mobile coverage, broadband quality.",
    )
    parser.add_argument("--version", action="version", version=f"parkwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.register(p)
    return parser


def run() -> None:
    """The console script: exit with :func:`main`'s status.

    DuckDB's Python bindings print a list of "leaked" binding objects to stderr when the
    interpreter finalises after they were imported: noise that looks like a fault to whoever
    ran ``parkwatch demo``. By the time :func:`main` returns every command has stopped its
    tasks and closed its files, so a process that loaded DuckDB ends without the finaliser.
    """
    code = main()
    if "duckdb" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A command group without its subcommand: show that group's help.
        target = getattr(args, "help_parser", parser)
        target.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in SERVER_PACKAGES:
            raise
        print(
            f"parkwatch {args.command}: needs {exc.name!r}, which an edge-only install leaves out.\n"
            "Install the server side: pip install 'parkwatch[server]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
