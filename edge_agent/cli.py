"""``parkwatch edge``: command-line entry of the edge agent (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys

HELP = "Provision, check and run the edge agent on a park gateway."


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=None, help_parser=parser)
    sub = parser.add_subparsers(dest="edge_command", metavar="SUBCOMMAND")
    init = sub.add_parser(
        "init", help="write a commented agent config", description="Write a commented agent config."
    )
    init.add_argument("--out", default="parkwatch-edge.toml", help="where to write it (default: %(default)s)")
    init.set_defaults(func=_not_built)
    doctor = sub.add_parser("doctor", help="check config, clock, broker, credentials and devices")
    doctor.add_argument("--config", metavar="FILE", help="agent TOML settings file")
    doctor.set_defaults(func=_not_built)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", metavar="FILE", help="agent TOML settings file")
    run.set_defaults(func=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    print("this command is not part of this build yet", file=sys.stderr)
    return 2
