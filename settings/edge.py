"""Typed settings of the edge agent (``parkwatch edge``), loaded from TOML with ``PARKWATCH_*`` overrides.

Collectors are a list of tables tagged by ``type`` (``[[collectors]] type = "modbus"``). See
``config/edge.toml`` for a commented sample with every option, its meaning and its default.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contract.ids import FieldName, Id
from settings.common import BrokerSettings, LoggingSettings, Port, PositiveSeconds
from settings.edge_opcua import OpcuaCollector

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]

RegisterType = Literal["uint16", "int16", "uint32", "int32", "float32", "uint64"]
ModbusKind = Literal["machine", "energy", "environment", "generic"]
ModbusProfile = Literal["machine", "energy", "environment", "custom"]


class AgentOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Identity of the gateway and the agent's own loops.

    Attributes:
        park: park id (topic segment), e.g. ``hp-deep-c``.
        gateway: gateway id, unique in the park; also the default MQTT client id.
        state_dir: directory of the disk buffer (created when missing).
        status_interval_s: how often the retained ``online`` status is republished.
        shutdown_grace_s: on SIGTERM, how long to wait for in-flight batches to be acknowledged.
        session_expiry_s: MQTT 5 session expiry; the broker keeps the session (and queued
            down-link messages) this long after a disconnect.
        lat, lon: the gateway's fixed position (WGS84 degrees), for a gateway that does not
            move: the agent stamps it on its cellular, Wi-Fi and broadband readings that carry no
            position of their own, so they land in the right H3 cell of the coverage maps
            without any setting on the ingester's side. Both or neither.
    """

    park: Id
    gateway: Id
    state_dir: str = "/var/lib/parkwatch-edge"
    status_interval_s: PositiveSeconds = 60.0
    shutdown_grace_s: PositiveSeconds = 10.0
    session_expiry_s: Annotated[int, msgspec.Meta(ge=0, le=4294967295)] = 7 * 24 * 3600
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError(
                "agent.lat and agent.lon go together: give both (the gateway's fixed position) or neither"
            )


class BatchOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How readings are grouped into telemetry batches and forwarded.

    Attributes:
        max_readings: a batch is sealed when it holds this many readings (contract limit 1000).
        max_interval_s: a non-empty batch is sealed at least this often.
        max_inflight: batches published and waiting for their PUBACK at the same time.
        replay_batches_per_s: pacing of backlog replay after an outage; live batches always
            go first, the backlog uses this rate at most.
    """

    max_readings: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 500
    max_interval_s: PositiveSeconds = 1.0
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8
    replay_batches_per_s: PositiveSeconds = 20.0


class BufferOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The on-disk store-and-forward buffer (SQLite, WAL journal).

    Attributes:
        path: buffer file; empty means ``<state_dir>/buffer.sqlite``.
        max_readings: cap on readings kept (staged plus batched); when exceeded, the oldest
            readings are dropped (whole oldest batches first) and counted as ``dropped``.
        max_mb: cap on the stored reading bytes, same drop-oldest policy.
        hold_until_confirmed: keep a published batch after its PUBACK until an ingester confirms
            it stored the batch (``down/confirm``), and resend it when it stays unconfirmed
            (gap repair). Turn off only when the ingesters do not confirm.
        confirm_grace_s: how long a published batch may stay unconfirmed while a later batch
            is already confirmed, before it is resent with its original ``seq``.
        confirm_retention_s: a published batch still unconfirmed this long after its first
            publish is deleted and counted as ``expired``.
    """

    path: str = ""
    max_readings: PositiveInt = 5_000_000
    max_mb: Annotated[float, msgspec.Meta(gt=0)] = 512.0
    hold_until_confirmed: bool = True
    confirm_grace_s: PositiveSeconds = 30.0
    confirm_retention_s: PositiveSeconds = 24 * 3600.0


class ModbusRegister(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One field read from holding registers.

    Attributes:
        field: the contract field (``spindle_temp_c``) or, for ``generic`` devices, any name.
        address: first holding register (0-based).
        type: uint16, int16 (1 register), uint32, int32, float32 (2), uint64 (4).
        scale: multiply the raw value by this (``0.1`` for tenths).
        byte_order, word_order: ``big`` (Modbus default) or ``little``; word order applies to
            32/64-bit values (``big`` = high word first).
        enum: map raw integers 0..n-1 to these strings (machine ``state``).
        unit: documentation only.
    """

    field: FieldName
    address: Annotated[int, msgspec.Meta(ge=0, le=65535)]
    type: RegisterType = "uint16"
    scale: float = 1.0
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    enum: list[str] | None = None
    unit: str = ""


ModbusTransport = Literal["tcp", "rtu", "rtu_over_tcp"]

_SERIAL_UNIT_MAX = 247
"""Highest unit id a device on a serial line answers with (0 is broadcast, 248-255 reserved)."""


class ModbusDevice(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One Modbus device: a Modbus TCP server (``host``) or a unit on a bus (``bus``).

    Attributes:
        id: device id (the ``dev`` of its readings).
        host, port: a Modbus TCP device's address; devices with the same host and port share
            one connection, one request at a time (a Modbus TCP gateway with several units).
        bus: instead of ``host``: the id of a ``[[collectors.buses]]`` table (an RS-485 line or
            an RTU-over-TCP serial gateway); every device of a bus shares it, one request at
            a time.
        unit_id: the unit (slave) id; 1-247 on a serial line.
        kind: contract reading kind it produces.
        profile: built-in register map (machine, energy, environment) or ``custom``
            (``registers`` then lists every field).
        registers: extra or overriding fields (by field name) on top of the profile.
        poll_interval_s: how often it is read.
        report: ``period`` reports every poll; ``change`` only when a value changed, and at
            least every ``report_period_s``.
        report_period_s: heartbeat period of ``change`` reporting.
        timeout_s: how long one request to this device may take (connecting included) before
            the poll fails; other devices of its bus wait at most this long for it.
        tags: labels added to every reading.
    """

    id: Id
    host: str = ""
    port: Port = 502
    bus: Id | None = None
    unit_id: Annotated[int, msgspec.Meta(ge=0, le=255)] = 1
    kind: ModbusKind = "machine"
    profile: ModbusProfile = "machine"
    registers: list[ModbusRegister] = msgspec.field(default_factory=list)
    poll_interval_s: PositiveSeconds = 1.0
    report: Literal["period", "change"] = "period"
    report_period_s: PositiveSeconds = 60.0
    timeout_s: PositiveSeconds = 2.0
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if bool(self.host) == (self.bus is not None):
            raise ValueError(
                f"device {self.id}: give either host (a Modbus TCP device) or bus (the id of a "
                "[[collectors.buses]] table), exactly one of them"
            )


class ModbusBus(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A line shared by several Modbus devices: one request at a time, in turn.

    Attributes:
        id: bus id, named by the devices' ``bus``.
        transport: ``rtu`` (RS-485/RS-232 serial port), ``rtu_over_tcp`` (a serial gateway
            forwarding raw RTU frames over TCP) or ``tcp`` (a Modbus TCP gateway in front of
            a serial line).
        serial_port: ``rtu`` only: the serial device, e.g. ``/dev/ttyUSB0`` (prefer the stable
            ``/dev/serial/by-id/...`` name).
        baudrate: ``rtu`` only: line speed in bit/s.
        parity: ``rtu`` only: ``N`` (none), ``E`` (even) or ``O`` (odd).
        stopbits: ``rtu`` only: 1 or 2.
        bytesize: ``rtu`` only: data bits per character, 7 or 8.
        host, port: ``rtu_over_tcp`` and ``tcp``: the gateway's address.
        gap_ms: silent time on the line after each answer before the next request, on top of
            the 3.5 character times that RTU requires (added automatically on serial lines).
    """

    id: Id
    transport: ModbusTransport
    serial_port: str = ""
    baudrate: Annotated[int, msgspec.Meta(ge=300, le=4_000_000)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    host: str = ""
    port: Port = 502
    gap_ms: Annotated[float, msgspec.Meta(ge=0.0, le=10_000.0)] = 0.0

    def __post_init__(self) -> None:
        if self.transport == "rtu":
            if not self.serial_port:
                raise ValueError(
                    f'bus {self.id}: transport "rtu" needs serial_port, e.g. serial_port = "/dev/ttyUSB0"'
                )
            if self.host:
                raise ValueError(
                    f'bus {self.id}: host is for transport "rtu_over_tcp" or "tcp"; '
                    "a serial bus has serial_port only"
                )
        else:
            if not self.host:
                raise ValueError(f'bus {self.id}: transport "{self.transport}" needs host (and port)')
            if self.serial_port:
                raise ValueError(
                    f'bus {self.id}: serial_port is for transport "rtu"; '
                    f'transport "{self.transport}" has host and port'
                )


class ModbusCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="modbus"
):
    """Polls Modbus devices: Modbus TCP, and RTU on serial lines or behind serial gateways.

    Attributes:
        devices: the devices, ``[[collectors.devices]]``.
        buses: the shared lines, ``[[collectors.buses]]``, named by the devices' ``bus``.
    """

    devices: list[ModbusDevice]
    buses: list[ModbusBus] = msgspec.field(default_factory=list)
    name: str = "modbus"

    def __post_init__(self) -> None:
        buses = {b.id: b for b in self.buses}
        if len(buses) != len(self.buses):
            twice = sorted({b.id for b in self.buses if sum(o.id == b.id for o in self.buses) > 1})
            raise ValueError(f"bus id {', '.join(twice)} is defined more than once; give each bus its own id")
        ports: dict[str, str] = {}
        for b in self.buses:
            if b.transport == "rtu":
                if b.serial_port in ports:
                    raise ValueError(
                        f"buses {ports[b.serial_port]} and {b.id} both use serial port {b.serial_port}: "
                        "one port is one bus; put all its devices on one bus"
                    )
                ports[b.serial_port] = b.id
        units: dict[tuple[str, int], str] = {}
        for d in self.devices:
            if d.bus is None:
                continue
            bus = buses.get(d.bus)
            if bus is None:
                known = ", ".join(sorted(buses)) or "none"
                raise ValueError(
                    f"device {d.id}: bus {d.bus!r} is not defined; add a [[collectors.buses]] table "
                    f"with id = {d.bus!r} (defined: {known})"
                )
            if bus.transport != "tcp" and not 1 <= d.unit_id <= _SERIAL_UNIT_MAX:
                raise ValueError(
                    f"device {d.id}: unit_id {d.unit_id} cannot be polled on an RTU line; use 1-{_SERIAL_UNIT_MAX}"
                )
            other = units.setdefault((d.bus, d.unit_id), d.id)
            if other != d.id:
                raise ValueError(
                    f"devices {other} and {d.id} both have unit_id {d.unit_id} on bus {d.bus}; "
                    "every device of a bus needs its own unit id"
                )


class Modem(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One cellular modem read over AT commands.

    Attributes:
        id: device id.
        address: ``tcp://host:port`` or a serial device path such as ``/dev/ttyUSB2``.
        baudrate: serial speed (serial devices only).
        interval_s: how often the serving cell is read.
        gnss: also ask for a GNSS position (``AT+QGPSLOC=2``).
        uplink: this modem carries the gateway's uplink; its signal goes into the status.
        timeout_s: one command's timeout.
        operator: the network name of the modem's SIM. With it, a modem that finds no cell
            still reports a ``no_service`` reading (the dead spots that matter most); without
            it such moments cannot be attributed to an operator and are not reported.
        tech: the technology reported for ``no_service`` readings.
    """

    id: Id
    address: str
    baudrate: PositiveInt = 115200
    interval_s: PositiveSeconds = 10.0
    gnss: bool = True
    uplink: bool = False
    timeout_s: PositiveSeconds = 3.0
    operator: Annotated[str, msgspec.Meta(max_length=128)] = ""
    tech: Literal["LTE", "NR"] = "LTE"


class CellularCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="cellular"
):
    """Reads modems over AT commands."""

    modems: list[Modem]
    name: str = "cellular"


class ProbeTarget(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One broadband probe target (an HTTP/1.1 server with /ping, /download, /upload).

    Attributes:
        name: target name (the ``target`` of readings).
        host: IPv4 address or name of the target.
        ipv6_host: IPv6 address or name for the IPv6 reachability check (empty: skipped).
        port: TCP port.
        dns_name: name whose resolution time is measured (empty: skipped).
        pings: connections (or echo requests) per round for latency, jitter and loss.
        ping: ``tcp`` (connect and ``GET /ping``), ``icmp`` (echo; needs permission for
            unprivileged ICMP sockets) or ``auto`` (ICMP where permitted, else TCP).
        download_bytes, upload_bytes: throughput test sizes (0: skipped).
    """

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    host: str
    port: Port = 80
    ipv6_host: str = ""
    dns_name: str = ""
    pings: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    ping: Literal["tcp", "icmp", "auto"] = "tcp"
    download_bytes: Annotated[int, msgspec.Meta(ge=0, le=50_000_000)] = 1_000_000
    upload_bytes: Annotated[int, msgspec.Meta(ge=0, le=50_000_000)] = 250_000


class BroadbandCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="broadband"
):
    """Active probes of broadband targets.

    Attributes:
        device: device id of the readings (the probe itself).
        interval_s: time between probe rounds.
        timeout_s: timeout of one connection or transfer.
    """

    targets: list[ProbeTarget]
    device: Id = "probe"
    interval_s: PositiveSeconds = 60.0
    timeout_s: PositiveSeconds = 5.0
    name: str = "broadband"


class WifiCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="wifi"
):
    """Wi-Fi scans through ``iw dev <interface> scan`` or ``nmcli``.

    Attributes:
        device: device id of the readings.
        interface: wireless interface (``iw`` only).
        tool: ``iw`` (needs CAP_NET_ADMIN) or ``nmcli``.
        interval_s: time between scans.
        timeout_s: how long a scan may take.
    """

    device: Id = "wifi"
    interface: str = "wlan0"
    tool: Literal["iw", "nmcli"] = "nmcli"
    interval_s: PositiveSeconds = 60.0
    timeout_s: PositiveSeconds = 20.0
    name: str = "wifi"


class SystemCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="system"
):
    """The gateway's own CPU, memory, disk, uptime and clock sync.

    Attributes:
        device: device id of the readings.
        interval_s: sampling period.
        disk_path: file system whose use is reported.
    """

    device: Id = "gateway"
    interval_s: PositiveSeconds = 30.0
    disk_path: str = "/"
    name: str = "system"


CollectorSettings = (
    ModbusCollector
    | CellularCollector
    | BroadbandCollector
    | WifiCollector
    | SystemCollector
    | OpcuaCollector
)
CollectorType = Literal["modbus", "cellular", "broadband", "wifi", "system", "opcua"]


class EdgeSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything ``parkwatch edge run`` needs."""

    agent: AgentOptions
    broker: BrokerSettings = msgspec.field(default_factory=BrokerSettings)
    batch: BatchOptions = msgspec.field(default_factory=BatchOptions)
    buffer: BufferOptions = msgspec.field(default_factory=BufferOptions)
    collectors: list[CollectorSettings] = msgspec.field(default_factory=list)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)

    @property
    def client_id(self) -> str:
        """The MQTT client id: ``[broker] client_id``, else the username, else ``pw-edge-<gateway>``.

        The username (``<park>/<gw>``) is the id the deploy broker gives a gateway whatever it
        sends (``use_username_as_clientid``), so the agent's logs name the session it really has.
        """
        return self.broker.client_id or self.broker.username or f"pw-edge-{self.agent.gateway}"

    @property
    def buffer_path(self) -> str:
        """The buffer file path after defaults."""
        return self.buffer.path or f"{self.agent.state_dir.rstrip('/')}/buffer.sqlite"
