"""``parkwatch sim``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_sim.scenario import Scenario

HELP = "Run the firmware simulator: PLCs, meters, modems, probe targets, radio ground truth."

_SCENARIO_HELP = "scenario TOML file, or 'default' for the shipped Hai Phong scenario (default: %(default)s)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=None, help_parser=parser)
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")

    run = sub.add_parser(
        "run",
        help="start the simulated devices on loopback and print their endpoints",
        description="Start every simulated device of a scenario (Modbus TCP PLCs and meters, AT-command "
        "modems, HTTP probe targets on 127.0.0.1 and ::1) and print their endpoints. Runs until "
        "Ctrl-C or --duration.",
    )
    run.add_argument("--scenario", default="default", help=_SCENARIO_HELP)
    run.add_argument("--seed", type=int, help="override the scenario's [sim] seed")
    run.add_argument("--speed", type=float, help="simulated seconds per real second (override [sim] speed)")
    run.add_argument("--gateway", action="append", metavar="ID", help="only this gateway (repeatable)")
    run.add_argument("--endpoints-out", metavar="FILE", help="also write the endpoints as JSON to FILE")
    run.add_argument("--json", action="store_true", help="print the endpoints as JSON instead of a table")
    run.add_argument("--no-ipv6", action="store_true", help="probe targets listen on IPv4 loopback only")
    run.add_argument("--duration", type=float, metavar="S", help="stop after S real seconds")
    run.add_argument("--log-level", default="WARNING", help="logging level (default: %(default)s)")
    run.set_defaults(func=_run)

    truth = sub.add_parser(
        "truth",
        help="write the true coverage classes and dead zones as GeoJSON (and a PNG map)",
        description="Compute the scenario's ground truth: the signal class of every H3 cell inside the "
        "parks per operator and technology (same thresholds as the analytics) and the true dead "
        "zones (connected cells at or below 'poor'), and write them as GeoJSON.",
    )
    truth.add_argument("--scenario", default="default", help=_SCENARIO_HELP)
    truth.add_argument(
        "--out", default="truth.geojson", metavar="FILE", help="GeoJSON output (default: %(default)s)"
    )
    truth.add_argument("--resolution", type=int, default=10, help="H3 resolution 5-13 (default: %(default)s)")
    truth.add_argument("--operator", help="only this operator id")
    truth.add_argument("--tech", choices=["LTE", "NR"], help="only this technology")
    truth.add_argument("--seed", type=int, help="override the scenario's [sim] seed")
    truth.add_argument("--dead-zones-only", action="store_true", help="omit the per-cell class features")
    truth.add_argument("--png", metavar="FILE", help="also render the true coverage map as a PNG")
    truth.set_defaults(func=_truth)

    fleet = sub.add_parser(
        "fleet",
        help="run many virtual gateways publishing contract batches over MQTT (load generator)",
        description="Run N virtual gateways whose readings come from the simulator's device and radio "
        "models, publishing contract v1 batches over MQTT (QoS 1) at a total rate, then print "
        "what was sent: batches, readings and per-kind counts.",
    )
    fleet.add_argument("--scenario", default="default", help=_SCENARIO_HELP)
    fleet.add_argument(
        "--gateways", type=int, default=10, metavar="N", help="virtual gateways (default: %(default)s)"
    )
    fleet.add_argument(
        "--rate",
        type=float,
        default=10.0,
        metavar="R",
        help="batches per second, all gateways together (default: %(default)s)",
    )
    fleet.add_argument(
        "--duration", type=float, default=10.0, metavar="S", help="seconds to run (default: %(default)s)"
    )
    fleet.add_argument(
        "--broker", default="127.0.0.1:1883", metavar="HOST:PORT", help="MQTT broker (default: %(default)s)"
    )
    fleet.add_argument("--root", default="parkwatch", help="MQTT topic root (default: %(default)s)")
    fleet.add_argument(
        "--mqtt-protocol", choices=["3.1.1", "5"], default="5", help="MQTT version (default: %(default)s)"
    )
    fleet.add_argument("--username", help="MQTT user name")
    fleet.add_argument("--password", help="MQTT password (or PARKWATCH_SIM_MQTT_PASSWORD)")
    fleet.add_argument("--seed", type=int, help="override the scenario's [sim] seed")
    fleet.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (default: %(default)s)"
    )
    fleet.add_argument(
        "--connect-timeout",
        type=float,
        default=15.0,
        metavar="S",
        help="give up connecting after S seconds (default: %(default)s)",
    )
    fleet.add_argument("--summary-json", metavar="FILE", help="also write the final summary as JSON")
    fleet.add_argument("--quiet", action="store_true", help="no progress display")
    fleet.set_defaults(func=_fleet)


def _load(args: argparse.Namespace) -> Scenario:
    import msgspec

    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    changes: dict[str, Any] = {}
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    if getattr(args, "speed", None) is not None:
        if args.speed <= 0:
            raise ValueError("--speed must be > 0")
        changes["speed"] = args.speed
    if changes:
        scenario = msgspec.structs.replace(scenario, sim=msgspec.structs.replace(scenario.sim, **changes))
    return scenario


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from firmware_sim.errors import SimError
    from settings.runtime import setup_logging

    setup_logging(args.log_level.upper())
    try:
        scenario = _load(args)
    except (SimError, ValueError) as exc:
        print(f"parkwatch sim run: {exc}", file=sys.stderr)
        return 2
    from firmware_sim.run_cli import run_simulator

    try:
        return asyncio.run(
            run_simulator(
                scenario,
                gateways=args.gateway,
                endpoints_out=args.endpoints_out,
                as_json=args.json,
                ipv6=not args.no_ipv6,
                duration_s=args.duration,
            )
        )
    except SimError as exc:
        print(f"parkwatch sim run: {exc}", file=sys.stderr)
        return 1


def _truth(args: argparse.Namespace) -> int:
    from firmware_sim.errors import SimError

    try:
        scenario = _load(args)
    except (SimError, ValueError) as exc:
        print(f"parkwatch sim truth: {exc}", file=sys.stderr)
        return 2
    if not 5 <= args.resolution <= 13:
        print("parkwatch sim truth: --resolution must be between 5 and 13", file=sys.stderr)
        return 2
    from firmware_sim.truth import write_truth

    try:
        summary = write_truth(
            scenario,
            out=args.out,
            resolution=args.resolution,
            operator=args.operator,
            tech=args.tech,
            cells=not args.dead_zones_only,
            png=args.png,
        )
    except (SimError, ValueError) as exc:
        print(f"parkwatch sim truth: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _fleet(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from firmware_sim.errors import SimError

    try:
        scenario = _load(args)
    except (SimError, ValueError) as exc:
        print(f"parkwatch sim fleet: {exc}", file=sys.stderr)
        return 2
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        print(f"parkwatch sim fleet: --broker must be HOST:PORT, got {args.broker!r}", file=sys.stderr)
        return 2
    if args.gateways < 1 or args.rate <= 0 or args.duration <= 0:
        print("parkwatch sim fleet: --gateways, --rate and --duration must be positive", file=sys.stderr)
        return 2
    from firmware_sim.fleet import FleetOptions, run_fleet_cli

    options = FleetOptions(
        gateways=args.gateways,
        rate=args.rate,
        duration_s=args.duration,
        host=host.strip("[]"),
        port=int(port),
        root=args.root,
        username=args.username,
        password=args.password or os.environ.get("PARKWATCH_SIM_MQTT_PASSWORD"),
        protocol=args.mqtt_protocol,
        speed=args.speed,
        connect_timeout_s=args.connect_timeout,
    )
    try:
        return asyncio.run(run_fleet_cli(scenario, options, summary_json=args.summary_json, quiet=args.quiet))
    except SimError as exc:
        print(f"parkwatch sim fleet: {exc}", file=sys.stderr)
        return 1
