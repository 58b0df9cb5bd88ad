"""``parkwatch demo``: the whole platform on embedded defaults, on one machine, no external services."""

from __future__ import annotations

import argparse

HELP = "Run the whole platform on this machine: embedded broker, simulator, edge agents, ingester, API."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="keep the data here (default: a temp dir)"
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="embedded broker port (default: %(default)s)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from parkwatch.demo import run_demo

    return asyncio.run(run_demo(duration_s=args.duration, data_dir=args.data_dir, mqtt_port=args.mqtt_port))
