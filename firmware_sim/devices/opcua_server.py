"""An OPC UA server (asyncua) exposing one simulated factory: a PLC/SCADA server in front of a hall.

Address space (namespace ``urn:parkwatch:sim:<gateway>``, index 2 on a fresh server)::

    Objects/
      2:Factory                     object, display name the factory's name
        2:<device id>               object per machine, energy meter and environment sensor
          2:<contract field>        variable, e.g. 2:spindle_temp_c (Double), 2:state (String),
                                    2:parts_total (UInt32); NodeId ns=2;s=<device id>.<field>

Every ``scan_s`` seconds (a PLC scan) the device models advance to the simulated time and the
values that changed are written with the scan's wall-clock time as SourceTimestamp, so a
subscription sees one timestamp per scan. Security: ``None`` only, or Basic256Sha256 Sign and
SignAndEncrypt with a server certificate and key; users: anonymous, or user/password pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds

from contract.readings import Reading, measurement_fields
from firmware_sim.errors import DeviceStartError
from firmware_sim.models.energy import EnergyModel
from firmware_sim.models.environment import EnvironmentModel
from firmware_sim.models.machine import MachineModel

_log = logging.getLogger(__name__)

Value = float | int | str
UINT32_FIELDS: Final = frozenset({"parts_total", "rejects_total"})
STRING_FIELDS: Final = frozenset({"state"})


@dataclass(frozen=True, slots=True)
class OpcuaDevice:
    """One device of the factory: its id, reading kind and a function returning its values."""

    id: str
    kind: str
    values: Callable[[], dict[str, Value]]


class _Users(UserManager):
    def __init__(self, users: dict[str, str]) -> None:
        self._users = users

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


def _nid(text: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(text), ua.Int16(ns))


def _variant(field: str, value: Value) -> ua.Variant:
    if field in STRING_FIELDS:
        return ua.Variant(str(value), ua.VariantType.String)
    if field in UINT32_FIELDS:
        return ua.Variant(int(value) & 0xFFFFFFFF, ua.VariantType.UInt32)
    return ua.Variant(round(float(value), 3), ua.VariantType.Double)


class OpcuaFactoryServer:
    """The OPC UA server of one simulated factory on ``host:port`` (port 0 picks a free one).

    Args:
        name: the gateway id (namespace URI and logs).
        factory: display name of the Factory object.
        devices: what the server exposes.
        advance: called before every scan (advances the models to the simulated time).
        host: address to bind.
        scan_s: time between two scans, real seconds.
        certificate, private_key: server certificate (DER/PEM) and key (PEM); with them the
            server offers Basic256Sha256 Sign and SignAndEncrypt.
        allow_none: also offer the ``None`` security policy (default: only when no certificate).
        users: user name -> password; None allows anonymous access only, a dict refuses anonymous.
    """

    def __init__(
        self,
        *,
        name: str,
        factory: str,
        devices: Sequence[OpcuaDevice],
        advance: Callable[[], None] = lambda: None,
        host: str = "127.0.0.1",
        scan_s: float = 1.0,
        certificate: str = "",
        private_key: str = "",
        allow_none: bool | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.factory = factory or name
        self.devices = list(devices)
        self.host = host
        self.port = 0
        self.scan_s = scan_s
        self.namespace = f"urn:parkwatch:sim:{name}"
        self.scans = 0
        self._advance = advance
        self._certificate = certificate
        self._private_key = private_key
        self._allow_none = allow_none if allow_none is not None else not certificate
        self._users = users
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}
        self._last: dict[tuple[str, str], Value] = {}
        self.ns = 0

    @property
    def url(self) -> str:
        """The endpoint URL (after start)."""
        return f"opc.tcp://{self.host}:{self.port}/parkwatch/{self.name}"

    def node_id(self, device: str, field: str) -> str:
        """The NodeId string of one value, e.g. ``ns=2;s=cnc-01.state``."""
        return f"ns={self.ns};s={device}.{field}"

    async def start(self, port: int = 0) -> int:
        """Build the address space, start listening and scanning; return the bound port.

        Raises:
            DeviceStartError: the address cannot be bound or the certificate cannot be loaded.
        """
        server = Server(user_manager=_Users(self._users) if self._users is not None else None)
        try:
            await server.init()
            server.set_endpoint(f"opc.tcp://{self.host}:{port}/parkwatch/{self.name}")
            server.set_server_name(f"parkwatch simulator {self.name}")
            await server.set_application_uri(f"urn:parkwatch:sim:server:{self.name}")
            policies = [ua.SecurityPolicyType.NoSecurity] if self._allow_none else []
            if self._certificate:
                await server.load_certificate(self._certificate)
                await server.load_private_key(self._private_key)
                policies += [
                    ua.SecurityPolicyType.Basic256Sha256_Sign,
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ]
            server.set_security_policy(policies)
            server.set_identity_tokens(
                [ua.UserNameIdentityToken] if self._users is not None else [ua.AnonymousIdentityToken]
            )
            self.ns = await server.register_namespace(self.namespace)
            factory = await server.nodes.objects.add_object(
                _nid("Factory", self.ns), ua.QualifiedName("Factory", self.ns)
            )
            await factory.write_attribute(
                AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(self.factory)))
            )
            for dev in self.devices:
                obj = await factory.add_object(_nid(dev.id, self.ns), ua.QualifiedName(dev.id, self.ns))
                await obj.write_attribute(
                    AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(dev.kind)))
                )
                for field, value in dev.values().items():
                    nid = _nid(f"{dev.id}.{field}", self.ns)
                    await obj.add_variable(nid, ua.QualifiedName(field, self.ns), _variant(field, value))
                    self._nodes[(dev.id, field)] = nid
            await server.start()
        except (OSError, ValueError) as exc:
            with contextlib.suppress(Exception):
                await server.stop()
            raise DeviceStartError(
                f"OPC UA server {self.name}: cannot start on {self.host}:{port}: {exc}"
            ) from exc
        self._server = server
        assert server.bserver is not None
        self.port = int(server.bserver.port)
        await self.scan()
        self._task = asyncio.create_task(self._scan_loop(), name=f"opcua-sim-{self.name}")
        _log.debug("OPC UA server %s at %s", self.name, self.url)
        return self.port

    async def scan(self) -> int:
        """Advance the models and write every changed value; return how many changed."""
        assert self._server is not None
        self._advance()
        now = ua.DateTime.now(dt.UTC)
        changed = 0
        for dev in self.devices:
            for field, value in dev.values().items():
                key = (dev.id, field)
                nid = self._nodes.get(key)
                if nid is None or self._last.get(key) == value:
                    continue
                self._last[key] = value
                dv = ua.DataValue(_variant(field, value), SourceTimestamp=now, ServerTimestamp=now)
                await self._server.write_attribute_value(nid, dv)
                changed += 1
        self.scans += 1
        return changed

    async def write(self, device: str, field: str, value: Value, *, source_ms: int | None = None) -> None:
        """Set one value now, optionally with its own SourceTimestamp (epoch ms), as a PLC would."""
        assert self._server is not None
        now = ua.DateTime.now(dt.UTC)
        source = now if source_ms is None else ua.DateTime.fromtimestamp(source_ms / 1000, dt.UTC)
        self._last[(device, field)] = value
        dv = ua.DataValue(_variant(field, value), SourceTimestamp=source, ServerTimestamp=now)
        await self._server.write_attribute_value(self._nodes[(device, field)], dv)

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.scan_s)
            await self.scan()

    async def aclose(self) -> None:
        """Stop scanning and listening (connected clients see the connection close)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.stop()


def model_values(model: MachineModel | EnergyModel | EnvironmentModel) -> Callable[[], dict[str, Value]]:
    """A device model's current values by contract field, at the resolution a PLC would expose
    (the same rounding as the fleet readings of :mod:`firmware_sim.readings`)."""
    from firmware_sim.readings import energy_reading, environment_reading, machine_reading

    def values() -> dict[str, Value]:
        if isinstance(model, MachineModel):
            reading: Reading = machine_reading(model, ts_ms=0)
        elif isinstance(model, EnergyModel):
            reading = energy_reading(model, ts_ms=0)
        else:
            reading = environment_reading(model, ts_ms=0)
        return {
            f: v
            for f in measurement_fields(type(reading))
            if isinstance(v := getattr(reading, f), float | int | str)
        }

    return values
