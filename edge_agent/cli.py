"""``parkwatch edge``: command-line entry of the edge agent (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys

HELP = "Provision, check and run the edge agent on a park gateway."


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=None, help_parser=parser)
    sub = parser.add_subparsers(dest="edge_command", metavar="SUBCOMMAND")

    init = sub.add_parser(
        "init",
        help="write a commented agent config",
        description="Write a commented agent config from flags, from the simulator's endpoints file, "
        "or by asking (when run in a terminal without --park/--gateway).",
    )
    init.add_argument("--out", default="parkwatch-edge.toml", help="where to write it (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--park", default="", help="park id, e.g. hp-deep-c")
    init.add_argument("--gateway", default="", help="gateway id, e.g. gw-001")
    init.add_argument("--broker-host", default="127.0.0.1", help="MQTT broker host (default: %(default)s)")
    init.add_argument("--broker-port", type=int, default=1883, help="MQTT broker port (default: %(default)s)")
    init.add_argument(
        "--protocol", choices=["5", "3.1.1"], default="5", help="MQTT version (default: %(default)s)"
    )
    init.add_argument("--username", default="", help="MQTT username of this gateway")
    init.add_argument(
        "--password",
        default="",
        help="MQTT password of this gateway (asked without echo when run in a terminal; "
        "the file is then written with mode 0600)",
    )
    init.add_argument("--tls-ca", default="", metavar="FILE", help="CA file; enables TLS")
    init.add_argument("--topic-root", default="parkwatch", help="topic root (default: %(default)s)")
    init.add_argument(
        "--state-dir", default="/var/lib/parkwatch-edge", help="disk buffer directory (default: %(default)s)"
    )
    init.add_argument(
        "--modbus",
        action="append",
        default=[],
        metavar="ID=HOST:PORT:KIND",
        help='a Modbus TCP device (KIND: machine, energy, environment), also as "ID HOST:PORT KIND"; repeatable',
    )
    init.add_argument(
        "--modem",
        action="append",
        default=[],
        metavar="ID=ADDRESS",
        help="a modem at tcp://HOST:PORT or a serial device; the first is the uplink; repeatable",
    )
    init.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a broadband probe target; repeatable",
    )
    init.add_argument(
        "--position",
        metavar="LAT,LON",
        help="the gateway's fixed position (WGS84 degrees): stamped on its cellular, Wi-Fi and broadband "
        "readings so they appear on the coverage map; leave out for a moving gateway",
    )
    init.add_argument(
        "--opcua",
        action="append",
        default=[],
        metavar="URL",
        help="an OPC UA server (opc.tcp://HOST:PORT): browse it and write its node map; repeatable",
    )
    init.add_argument(
        "--opcua-security",
        default="None",
        metavar="POLICY[:MODE]",
        help="None (default), Basic256Sha256:Sign or Basic256Sha256:SignAndEncrypt",
    )
    init.add_argument("--opcua-cert", default="", metavar="FILE", help="this gateway's OPC UA certificate")
    init.add_argument("--opcua-key", default="", metavar="FILE", help="its private key (PEM)")
    init.add_argument("--opcua-user", default="", help="OPC UA user name (empty: anonymous)")
    init.add_argument("--opcua-password", default="", help="OPC UA password")
    init.add_argument("--no-system", action="store_true", help="leave out the gateway's own health collector")
    init.add_argument(
        "--endpoints",
        metavar="FILE",
        help="take park, gateway and devices from `parkwatch sim run --endpoints-out FILE`",
    )
    init.add_argument("--non-interactive", action="store_true", help="never prompt; fail on missing values")
    init.set_defaults(func=_init)

    doctor = sub.add_parser(
        "doctor",
        help="check config, clock, broker, TLS, credentials, ACL and devices",
        description="Check the agent's setup and print a pass/fail table with the fix for each failure. "
        "Exit code 1 when a check fails, 2 when the config cannot be loaded.",
    )
    doctor.add_argument(
        "--config", metavar="FILE", help="agent TOML settings file (default: $PARKWATCH_CONFIG)"
    )
    doctor.set_defaults(func=_doctor)

    run = sub.add_parser(
        "run",
        help="run the agent",
        description="Run the agent until SIGTERM/SIGINT: collect, buffer on disk, publish.",
    )
    run.add_argument("--config", metavar="FILE", help="agent TOML settings file (default: $PARKWATCH_CONFIG)")
    run.set_defaults(func=_run)


def _init(args: argparse.Namespace) -> int:
    from edge_agent.init_config import (
        InitValues,
        add_device_flags,
        from_endpoints,
        parse_position,
        prompt_missing,
        write,
    )
    from settings.errors import ConfigError

    try:
        v = from_endpoints(args.endpoints, args.gateway or None) if args.endpoints else InitValues()
        v.park = args.park or v.park
        v.gateway = args.gateway or v.gateway
        v.broker_host, v.broker_port, v.protocol = args.broker_host, args.broker_port, args.protocol
        v.username, v.password, v.tls_ca = args.username, args.password, args.tls_ca
        v.topic_root, v.state_dir, v.system = args.topic_root, args.state_dir, not args.no_system
        add_device_flags(v, args.modbus, args.modem, args.probe)
        if args.opcua:
            _browse_opcua(v, args)
        if args.position:
            v.lat, v.lon = parse_position(args.position)
        interactive = not args.non_interactive and sys.stdin.isatty()
        if (not v.park or not v.gateway) and interactive:
            prompt_missing(v)
        elif v.username and not v.password and interactive:
            import getpass

            v.password = getpass.getpass("MQTT password (not shown): ").strip()
        if not v.park or not v.gateway:
            raise ConfigError(
                "--park and --gateway are required (or --endpoints FILE, or run it in a terminal)"
            )
        path = write(v, args.out, force=args.force)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    private = " (mode 0600, readable by its owner only: it holds the MQTT password)" if v.password else ""
    print(f"wrote {path}{private}; check it with: parkwatch edge doctor --config {path}")
    return 0


def _browse_opcua(v: object, args: argparse.Namespace) -> None:
    import asyncio

    from edge_agent.init_config import InitValues, OpcuaInit, browse_opcua, parse_opcua_security

    assert isinstance(v, InitValues)
    policy, mode = parse_opcua_security(args.opcua_security)
    for i, url in enumerate(args.opcua):
        o = OpcuaInit(
            url=url,
            name="opcua" if len(args.opcua) == 1 else f"opcua-{i + 1}",
            security_policy=policy,
            security_mode=mode,
            certificate=args.opcua_cert,
            private_key=args.opcua_key,
            username=args.opcua_user,
            password=args.opcua_password,
        )
        v.opcua.append(asyncio.run(browse_opcua(o)))
        print(f"{url}: {len(o.nodes)} nodes found", file=sys.stderr)


def _doctor(args: argparse.Namespace) -> int:
    from edge_agent.doctor import render_table, run_checks

    checks = run_checks(args.config)
    print(render_table(checks, color=sys.stdout.isatty()))
    if checks[0].result == "fail":
        return 2
    return 1 if any(c.result == "fail" for c in checks) else 0


def _run(args: argparse.Namespace) -> int:
    from edge_agent.main import run

    return run(args.config)
