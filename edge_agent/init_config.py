"""``parkwatch edge init``: write a commented agent config from flags, prompts or simulator endpoints."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.ids import is_valid_id
from settings.edge import EdgeSettings
from settings.edge_opcua import OpcuaNode
from settings.errors import ConfigError
from settings.loader import load_settings


@dataclass
class OpcuaInit:
    """One OPC UA server of a new config: connection settings and the node map found by browsing."""

    url: str
    name: str = "opcua"
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: str = ""
    private_key: str = ""
    private_key_password: str = ""
    server_certificate: str = ""
    application_uri: str = ""
    username: str = ""
    password: str = ""
    timeout_s: float = 5.0
    watchdog_s: float = 5.0
    nodes: list[OpcuaNode] = field(default_factory=list)


@dataclass
class InitValues:
    """What a new config needs; everything else keeps its documented default."""

    park: str = ""
    gateway: str = ""
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    username: str = ""
    password: str = ""
    protocol: str = "5"
    tls_ca: str = ""
    topic_root: str = "parkwatch"
    state_dir: str = "/var/lib/parkwatch-edge"
    lat: float | None = None
    lon: float | None = None
    modbus: list[tuple[str, str, int, str]] = field(default_factory=list)
    """(device id, host, port, kind machine|energy|environment)."""
    modems: list[tuple[str, str, bool]] = field(default_factory=list)
    """(device id, address, uplink)."""
    modem_operators: dict[str, tuple[str, str]] = field(default_factory=dict)
    """device id -> (SIM operator network name, technology) for no-service readings."""
    probes: list[tuple[str, str, int]] = field(default_factory=list)
    """(target name, host, port)."""
    probe_ipv6: dict[str, str] = field(default_factory=dict)
    """target name -> IPv6 host for the reachability check."""
    system: bool = True
    opcua: list[OpcuaInit] = field(default_factory=list)
    """OPC UA servers with their node maps."""


def _render_opcua(o: OpcuaInit) -> list[str]:
    out = [
        "",
        "[[collectors]]",
        'type = "opcua"',
        f"name = {_q(o.name)}",
        f"url = {_q(o.url)}",
        f'security_policy = "{o.security_policy}"       # None | Basic256Sha256',
        f'security_mode = "{o.security_mode}"         # None | Sign | SignAndEncrypt',
    ]
    if o.certificate:
        out += [
            f"certificate = {_q(o.certificate)}    # this gateway's application certificate (the server must trust it)",
            f"private_key = {_q(o.private_key)}",
        ]
    if o.server_certificate:
        out.append(f"server_certificate = {_q(o.server_certificate)}  # pinned server certificate")
    if o.username:
        out += [f"username = {_q(o.username)}", f"password = {_q(o.password)}"]
    out += [
        'mode = "subscribe"                 # or "poll"; servers without subscriptions are polled anyway',
        "publishing_interval_s = 0.5        # the server sends collected changes this often",
        "sampling_interval_s = 0.25         # default sampling of every monitored node",
        "report_period_s = 60.0             # an unchanged device is reported again this often",
        "# The node map: one line per value. Found by browsing the server; rename devices and fields,",
        '# set kind = "machine" | "energy" | "environment" with contract fields, add scale, deadband, enum.',
        "nodes = [",
    ]
    for n in o.nodes:
        out.append(
            f'  {{ node_id = {_q(n.node_id)}, device = {_q(n.device)}, kind = "{n.kind}", field = {_q(n.field)} }},'
        )
    out.append("]")
    return out


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(v: InitValues) -> str:
    """The commented TOML text of a config (see ``config/edge.toml`` for every option)."""
    out = [
        "# parkwatch edge agent settings (written by `parkwatch edge init`).",
        "# Every option and its default is documented in config/edge.toml and docs/edge-agent.md.",
        "# Check it with: parkwatch edge doctor --config <this file>",
        "",
        "[agent]",
        f"park = {_q(v.park)}                # park id (topic segment)",
        f"gateway = {_q(v.gateway)}          # this gateway's id, unique in the park",
        f"state_dir = {_q(v.state_dir)}      # disk buffer lives here",
        "status_interval_s = 60.0           # retained online status period",
    ]
    if v.lat is not None and v.lon is not None:
        out += [f"lat = {v.lat}", f"lon = {v.lon}"]
    out += [
        "",
        "[broker]",
        f"host = {_q(v.broker_host)}",
        f"port = {v.broker_port}",
        f'protocol = "{v.protocol}"                     # "5" or "3.1.1"',
        f"username = {_q(v.username)}       # per-gateway credentials (empty: anonymous); also the client id",
        f"password = {_q(v.password)}",
        f"topic_root = {_q(v.topic_root)}",
    ]
    if v.tls_ca:
        out += ["", "[broker.tls]", f"ca_file = {_q(v.tls_ca)}      # CA that signed the broker certificate"]
    out += [
        "",
        "[batch]",
        "max_readings = 500                 # seal a batch at this many readings (<= 1000)",
        "max_interval_s = 1.0               # ... or at least this often",
        "",
        "[buffer]",
        "max_readings = 5000000             # cap; the oldest readings are dropped beyond it",
        "max_mb = 512.0",
    ]
    if v.modbus:
        out += ["", "[[collectors]]", 'type = "modbus"']
        for dev_id, host, port, kind in v.modbus:
            out += [
                "",
                "[[collectors.devices]]",
                f"id = {_q(dev_id)}",
                f"host = {_q(host)}",
                f"port = {port}",
                f'kind = "{kind}"                   # machine | energy | environment | generic',
                f'profile = "{kind}"                # built-in register map of the simulator devices',
                "poll_interval_s = 1.0",
                'report = "period"                  # or "change" (plus a heartbeat every report_period_s)',
            ]
    if v.modems:
        out += ["", "[[collectors]]", 'type = "cellular"']
        for dev_id, address, uplink in v.modems:
            out += [
                "",
                "[[collectors.modems]]",
                f"id = {_q(dev_id)}",
                f"address = {_q(address)}           # tcp://host:port or /dev/ttyUSB2",
                "interval_s = 10.0",
                "gnss = true",
                f"uplink = {'true' if uplink else 'false'}                      # its signal goes into the status",
            ]
            if dev_id in v.modem_operators:
                name, tech = v.modem_operators[dev_id]
                out += [
                    f"operator = {_q(name)}      # SIM's network: no-service moments are reported for it",
                    f'tech = "{tech}"',
                ]
    if v.probes:
        out += ["", "[[collectors]]", 'type = "broadband"', "interval_s = 60.0"]
        for name, host, port in v.probes:
            out += [
                "",
                "[[collectors.targets]]",
                f"name = {_q(name)}",
                f"host = {_q(host)}",
                f"port = {port}",
                f"ipv6_host = {_q(v.probe_ipv6.get(name, ''))}    # empty: IPv6 check skipped",
            ]
    for o in v.opcua:
        out += _render_opcua(o)
    if v.system:
        out += ["", "[[collectors]]", 'type = "system"', "interval_s = 30.0"]
    out += ["", "[logging]", 'level = "INFO"', 'format = "text"', ""]
    return "\n".join(out)


def from_endpoints(path: str, gateway: str | None) -> InitValues:
    """Values from the simulator's ``--endpoints-out`` JSON (``firmware_sim.endpoints.SimEndpoints``).

    One gateway of it: ``gateway`` or the first one.

    Raises:
        ConfigError: unreadable file or unknown gateway.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read simulator endpoints: {exc}") from exc
    gateways: dict[str, Any] = data.get("gateways", data) if isinstance(data, dict) else {}
    if not gateways:
        raise ConfigError(f"{path}: no gateways in the endpoints file")
    gw_id = gateway or next(iter(gateways))
    if gw_id not in gateways:
        raise ConfigError(f"{path}: gateway {gw_id!r} not found; known: {', '.join(list(gateways)[:20])}")
    gw = gateways[gw_id]
    v = InitValues(park=gw.get("park", ""), gateway=gw_id)
    if not gw.get("mobile") and gw.get("lat") is not None and gw.get("lon") is not None:
        v.lat, v.lon = gw["lat"], gw["lon"]
    for dev in gw.get("devices", []):
        kind, dev_id, host, port = dev.get("kind"), dev.get("id"), dev.get("host"), dev.get("port")
        if kind in ("machine", "energy", "environment"):
            v.modbus.append((dev_id, host, int(port), kind))
        elif kind == "modem":
            v.modems.append((dev_id, f"tcp://{host}:{port}", not v.modems))
            if dev.get("operator_name"):
                tech = dev.get("tech") if dev.get("tech") in ("LTE", "NR") else "LTE"
                v.modem_operators[dev_id] = (dev["operator_name"], tech)
        elif kind == "opcua_server" and dev.get("url"):
            nodes = [
                OpcuaNode(node_id=n["node_id"], device=n["device"], kind=n["kind"], field=n["field"])
                for n in dev.get("nodes") or []
            ]
            v.opcua.append(OpcuaInit(url=dev["url"], name=dev_id or "opcua", nodes=nodes))
        elif kind == "probe_target":
            v.probes.append((dev_id, host, int(port)))
            if dev.get("host6"):
                v.probe_ipv6[dev_id] = dev["host6"]
    return v


def _parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{what} {text!r}: expected HOST:PORT")
    return host, int(port)


MODBUS_KINDS = ("machine", "energy", "environment")
MODBUS_FORMS = "ID HOST:PORT KIND or ID=HOST:PORT:KIND, e.g. cnc-01 10.0.0.21:502 machine"


def parse_modbus(spec: str) -> tuple[str, str, int, str]:
    """A Modbus device as ``ID HOST:PORT KIND`` or ``ID=HOST:PORT:KIND`` (the prompt and the flag
    accept both): ``(id, host, port, kind)``."""
    text = spec.strip()
    if "=" in text and len(text.split()) == 1:
        dev_id, _, rest = text.partition("=")
        hostport, _, kind = rest.rpartition(":")
    else:
        parts = text.replace("=", " ").split()
        if len(parts) != 3:
            raise ConfigError(f"Modbus device {spec!r}: expected {MODBUS_FORMS}")
        dev_id, hostport, kind = parts
    if not is_valid_id(dev_id):
        raise ConfigError(f"Modbus device {spec!r}: {dev_id!r} is not a valid device id")
    if kind not in MODBUS_KINDS:
        raise ConfigError(f"Modbus device {spec!r}: KIND must be machine, energy or environment")
    host, port = _parse_hostport(hostport, "Modbus device")
    return dev_id, host, port, kind


def parse_position(text: str) -> tuple[float, float]:
    """``LAT,LON`` in WGS84 degrees, e.g. ``20.8561,106.7367``.

    Raises:
        ConfigError: not two numbers, or outside -90..90 / -180..180.
    """
    parts = text.replace(" ", "").split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"position {text!r}: write LAT,LON in degrees, e.g. 20.8561,106.7367") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or lat != lat or lon != lon:
        raise ConfigError(f"position {text!r}: latitude must be in -90..90 and longitude in -180..180")
    return lat, lon


def prompt_missing(
    v: InitValues, ask: Callable[[str], str] = input, secret: Callable[[str], str] = getpass.getpass
) -> None:
    """Ask for the values a config cannot do without (interactive use); the password is not echoed."""
    while not is_valid_id(v.park):
        v.park = ask("park id (e.g. hp-deep-c): ").strip()
    while not is_valid_id(v.gateway):
        v.gateway = ask("gateway id (e.g. gw-001): ").strip()
    host = ask(f"broker host [{v.broker_host}]: ").strip()
    v.broker_host = host or v.broker_host
    port = ask(f"broker port [{v.broker_port}]: ").strip()
    v.broker_port = int(port) if port.isdigit() else v.broker_port
    if not v.username:
        v.username = ask("MQTT username (empty: anonymous): ").strip()
    if v.username and not v.password:
        v.password = secret("MQTT password (not shown): ").strip()
    while v.lat is None:
        where = ask("fixed position as LAT,LON (empty: the gateway moves or has none): ").strip()
        if not where:
            break
        try:
            v.lat, v.lon = parse_position(where)
        except ConfigError as exc:
            print(f"  {exc}", file=sys.stderr)
    while True:
        dev = ask("add a Modbus device as ID HOST:PORT KIND (empty to finish): ").strip()
        if not dev:
            break
        try:
            v.modbus.append(parse_modbus(dev))
        except ConfigError as exc:
            print(f"  {exc}", file=sys.stderr)


def write(v: InitValues, out: str, *, force: bool) -> Path:
    """Render, validate by loading it back, and write the config.

    A config that holds a password is created readable by its owner only (mode 0600).

    Raises:
        ConfigError: the values do not make a valid config, or the file exists without ``force``.
    """
    path = Path(out)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    text = render(v)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if v.password or any(o.password for o in v.opcua) else 0o644
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)  # the umask may have taken bits away; never adds any for 0600
    try:
        load_settings(EdgeSettings, tmp, env={})
    except ConfigError:
        tmp.unlink()
        raise
    tmp.replace(path)
    return path


def add_device_flags(v: InitValues, modbus: list[str], modems: list[str], probes: list[str]) -> None:
    """Parse ``--modbus ID=HOST:PORT:KIND`` (or ``"ID HOST:PORT KIND"``), ``--modem ID=ADDRESS`` and ``--probe NAME=HOST:PORT``."""
    for spec in modbus:
        v.modbus.append(parse_modbus(spec))
    for spec in modems:
        dev_id, _, address = spec.partition("=")
        if not address:
            raise ConfigError(f"--modem {spec!r}: expected ID=tcp://HOST:PORT or ID=/dev/ttyUSB2")
        v.modems.append((dev_id, address, not v.modems))
    for spec in probes:
        name, _, hostport = spec.partition("=")
        host, port = _parse_hostport(hostport, "--probe")
        v.probes.append((name, host, port))


def parse_opcua_security(text: str) -> tuple[str, str]:
    """``None``, ``Basic256Sha256:Sign`` or ``Basic256Sha256:SignAndEncrypt`` -> (policy, mode).

    Raises:
        ConfigError: any other spelling.
    """
    policy, _, mode = text.partition(":")
    if policy == "None" and mode in ("", "None"):
        return "None", "None"
    if policy == "Basic256Sha256" and mode in ("Sign", "SignAndEncrypt"):
        return policy, mode
    raise ConfigError(
        f"--opcua-security {text!r}: write None, Basic256Sha256:Sign or Basic256Sha256:SignAndEncrypt"
    )


async def browse_opcua(o: OpcuaInit) -> OpcuaInit:
    """Connect to the server of ``o``, browse it and fill ``o.nodes`` (see :mod:`edge_agent.opcua_browse`).

    Raises:
        ConfigError: the server cannot be opened or browsed, or it holds no variables to map.
    """
    from edge_agent.collectors.opcua_client import CLIENT_ERRORS, close_client, describe, open_client
    from edge_agent.errors import DeviceError
    from edge_agent.opcua_browse import browse_variables, propose

    try:
        client = await open_client(o)
    except DeviceError as exc:
        raise ConfigError(f"{exc}; check the URL, --opcua-security and the user") from exc
    try:
        found = await browse_variables(client.nodes.objects)
    except CLIENT_ERRORS as exc:
        raise ConfigError(f"browsing {o.url} failed: {describe(exc)}") from exc
    finally:
        await close_client(client, healthy=True)
    if not found:
        raise ConfigError(
            f"{o.url} has no variables below Objects outside namespace 0; write the node map by hand "
            "(see config/edge-opcua.toml)"
        )
    o.nodes = propose(found)
    return o
