"""Discovery: the running simulator's endpoints, as a typed object and as JSON.

The edge agent's tests and the demo build agent configs from this (``parkwatch sim run
--endpoints-out FILE`` writes it). Only the standard library and msgspec are imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

DeviceKind = Literal["machine", "energy", "environment", "modem", "probe_target", "opcua_server"]


class OpcuaNodeEndpoint(msgspec.Struct, kw_only=True, frozen=True):
    """One value of a simulated OPC UA server: its NodeId and the reading field it is."""

    node_id: str
    device: str
    kind: str
    field: str


class DeviceEndpoint(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One simulated device and where to reach it.

    Attributes:
        id: device id, unique within its gateway (use it as the reading's ``dev``).
        kind: ``machine``, ``energy``, ``environment`` (Modbus TCP, unit id 1, holding registers),
            ``modem`` (AT commands over raw TCP) or ``probe_target`` (HTTP/1.1).
        host, port: IPv4 loopback address and port.
        host6: IPv6 loopback address (probe targets listen on both, same port).
        unit: Modbus unit (slave) id.
        registers: number of holding registers from address 0.
        line: production line of a machine.
        operator, operator_name: the modem's SIM operator id and network name.
        tech: the modem's technology setting (``LTE``, ``NR`` or ``auto``).
        gnss: whether the modem answers ``AT+QGPSLOC=2`` with a fix.
        profile: the probe target's scenario profile name.
        url: the OPC UA server's endpoint URL (``opcua_server``: one server for every machine,
            meter and sensor of its gateway, security None, anonymous).
        nodes: the OPC UA server's node map.
    """

    id: str
    kind: DeviceKind
    host: str
    port: int
    host6: str | None = None
    unit: int | None = None
    registers: int | None = None
    line: str | None = None
    operator: str | None = None
    operator_name: str | None = None
    tech: str | None = None
    gnss: bool | None = None
    profile: str | None = None
    url: str | None = None
    nodes: list[OpcuaNodeEndpoint] | None = None


class GatewayEndpoints(msgspec.Struct, kw_only=True, frozen=True):
    """A gateway: its park, (start) position, whether it moves, and its devices."""

    park: str
    lat: float
    lon: float
    mobile: bool
    devices: list[DeviceEndpoint]


class SimEndpoints(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a running simulator exposes, per gateway id."""

    scenario: str
    seed: int
    speed: float
    start_ms: int
    gateways: dict[str, GatewayEndpoints]

    def devices(self, kind: DeviceKind | None = None) -> Iterator[tuple[str, DeviceEndpoint]]:
        """(gateway id, device) pairs, optionally of one kind."""
        for gw_id, gw in self.gateways.items():
            for dev in gw.devices:
                if kind is None or dev.kind == kind:
                    yield gw_id, dev

    def to_json(self) -> bytes:
        """Pretty JSON."""
        return msgspec.json.format(msgspec.json.encode(self), indent=2)

    @classmethod
    def from_json(cls, data: bytes | str) -> SimEndpoints:
        """Parse :meth:`to_json` output."""
        return msgspec.json.decode(data, type=cls)

    @classmethod
    def load(cls, path: str | Path) -> SimEndpoints:
        """Read an ``--endpoints-out`` file."""
        return cls.from_json(Path(path).read_bytes())
