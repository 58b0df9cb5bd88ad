"""``parkwatch sim``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys

HELP = "Run the firmware simulator: PLCs, meters, modems, probe targets, radio ground truth."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (PARKWATCH_* variables override it)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("this command is not part of this build yet", file=sys.stderr)
    return 2
