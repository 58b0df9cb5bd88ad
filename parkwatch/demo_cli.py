"""``parkwatch demo``: the whole platform on embedded defaults, on one machine, no external services."""

from __future__ import annotations

import argparse

HELP = "Run the whole platform on this machine: embedded broker, simulator, edge agents, ingester, API."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep the data here (default: a temp dir, removed at exit)",
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="embedded broker port (default: %(default)s)"
    )
    parser.add_argument("--api-host", default="127.0.0.1", help="API listen address (default: %(default)s)")
    parser.add_argument(
        "--api-port", type=int, default=8080, help="API and dashboard port (default: %(default)s)"
    )
    parser.add_argument(
        "--speed", type=float, default=10.0, help="simulated seconds per real second (default: %(default)s)"
    )
    parser.add_argument(
        "--survey-seconds",
        type=float,
        default=12.0,
        metavar="SECONDS",
        help="replay a drive-test survey for this long before going live, 0 to skip (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the URL, the key and errors")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from parkwatch.demo import DemoOptions, run_demo
    from parkwatch.runtime import setup_logging

    setup_logging("WARNING")
    options = DemoOptions(
        duration_s=args.duration,
        data_dir=args.data_dir,
        mqtt_port=args.mqtt_port,
        api_host=args.api_host,
        api_port=args.api_port,
        speed=args.speed,
        survey_s=args.survey_seconds,
        quiet=args.quiet,
    )
    try:
        return run_demo(options)
    except OSError as exc:
        print(f"parkwatch demo: {exc}\nIs a port in use? Pass --mqtt-port / --api-port.")
        return 1
