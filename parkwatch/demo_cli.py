"""``parkwatch demo``: the whole platform on embedded defaults, on one machine, no external services."""

from __future__ import annotations

import argparse
import sys

from settings.ports import (
    PortBusyError,
    choose_port,
    non_negative_float,
    port_arg,
    positive_float,
)

MQTT_PORT = 1883
API_PORT = 8080
HELP = "Run the whole platform on this machine: embedded broker, simulator, edge agents, ingester, API."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep the data here (default: a temp dir, removed at exit)",
    )
    parser.add_argument(
        "--mqtt-port",
        type=port_arg,
        default=None,
        help=f"embedded broker port, 0 = any free port (default: {MQTT_PORT}, or a free one if it is busy)",
    )
    parser.add_argument("--api-host", default="127.0.0.1", help="API listen address (default: %(default)s)")
    parser.add_argument(
        "--api-port",
        type=port_arg,
        default=None,
        help=f"API and dashboard port, 0 = any free port (default: {API_PORT}, or a free one if it is busy)",
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=10.0,
        help="simulated seconds per real second, above 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--survey-seconds",
        type=non_negative_float,
        default=12.0,
        metavar="SECONDS",
        help="replay a drive-test survey for this long before going live, 0 to skip (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the URL, the key and errors")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from parkwatch.demo import DemoOptions, run_demo
    from settings.runtime import setup_logging

    setup_logging("ERROR" if args.quiet else "WARNING")
    try:
        mqtt = choose_port("127.0.0.1", args.mqtt_port, default=MQTT_PORT, what="MQTT", option="--mqtt-port")
        api = choose_port(args.api_host, args.api_port, default=API_PORT, what="API", option="--api-port")
    except PortBusyError as exc:
        print(f"parkwatch demo: {exc}", file=sys.stderr)
        return 2
    for note in (mqtt.note, api.note):
        if note:
            print(f"parkwatch demo: {note}")
    options = DemoOptions(
        duration_s=args.duration,
        data_dir=args.data_dir,
        mqtt_port=mqtt.port,
        api_host=args.api_host,
        api_port=api.port,
        speed=args.speed,
        survey_s=args.survey_seconds,
        quiet=args.quiet,
    )
    try:
        return run_demo(options)
    except OSError as exc:
        print(f"parkwatch demo: {exc}; is a port in use? pass --mqtt-port / --api-port", file=sys.stderr)
        return 1
