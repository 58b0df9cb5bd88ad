"""Settings of the edge agent's OPC UA collector (``[[collectors]] type = "opcua"``).

One table is one OPC UA server (endpoint URL, security, user) and its node map: every node names
the device, reading kind and contract field its value becomes. See ``config/edge-opcua.toml``
for a commented sample and ``docs/edge-agent.md`` for the behaviour.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import msgspec

from contract.ids import FieldName, Id
from contract.readings import KINDS, measurement_fields
from settings.common import PositiveSeconds

OpcuaKind = Literal["machine", "energy", "environment", "generic"]
SecurityPolicy = Literal["None", "Basic256Sha256"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]

NODE_ID: Final = re.compile(
    r"(ns=\d{1,5};)?(i=\d{1,10}|s=[^\n]{1,512}|g=[0-9a-fA-F-]{36}|b=[A-Za-z0-9+/=]{1,512})\Z"
)
"""``ns=<index>;i=<number>|s=<string>|g=<guid>|b=<base64>`` (the namespace part may be left out for 0)."""
BROWSE_SEGMENT: Final = re.compile(r"(\d{1,5}:)?[^/\n]{1,256}\Z")
"""One segment of a browse path: ``<namespace index>:<browse name>`` (index 0 when left out)."""


class OpcuaNode(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One node of the node map: where a value is and what it becomes.

    Attributes:
        node_id: the node's NodeId, e.g. ``ns=2;s=cnc-01.spindle_temp_c`` or ``ns=3;i=1042``.
        browse_path: instead of ``node_id``: the path of browse names from the Objects folder,
            ``2:Factory/2:cnc-01/2:spindle_temp_c`` (``<namespace index>:<name>`` per segment).
        device: the ``dev`` of the readings this value goes into.
        kind: contract reading kind: machine, energy, environment, or generic (any field name,
            stored under ``f``).
        field: the contract field (``spindle_temp_c``), or any name for ``generic``.
        scale: multiply a numeric value by this (``0.1`` for tenths).
        unit: documentation only (the contract field names the unit).
        enum: map an integer value 0..n-1 to these strings (a machine ``state`` kept as a code).
        sampling_interval_s: how often the server samples the value; 0 means the collector's
            ``sampling_interval_s``.
        deadband: absolute deadband in the node's own (unscaled) units: a change smaller than
            this is not reported; 0 reports every change.
    """

    device: Id
    field: FieldName
    kind: OpcuaKind = "generic"
    node_id: str = ""
    browse_path: str = ""
    scale: float = 1.0
    unit: str = ""
    enum: list[str] | None = None
    sampling_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0

    def __post_init__(self) -> None:
        if bool(self.node_id) == bool(self.browse_path):
            raise ValueError(
                f"node of {self.device}.{self.field}: give exactly one of node_id "
                '(e.g. "ns=2;s=cnc-01.spindle_temp_c") or browse_path (e.g. "2:Factory/2:cnc-01/2:Temp")'
            )
        if self.node_id and not NODE_ID.fullmatch(self.node_id):
            raise ValueError(
                f"node_id {self.node_id!r} of {self.device}.{self.field} is not a NodeId; "
                'write ns=<index>;i=<number> or ns=<index>;s=<name>, e.g. "ns=2;s=cnc-01.state"'
            )
        if self.browse_path and not all(
            BROWSE_SEGMENT.fullmatch(s) for s in self.browse_path.strip("/").split("/")
        ):
            raise ValueError(
                f"browse_path {self.browse_path!r} of {self.device}.{self.field}: write segments "
                '<namespace index>:<browse name> separated by "/", e.g. "2:Factory/2:cnc-01/2:Temp"'
            )
        if self.kind != "generic" and self.field not in measurement_fields(KINDS[self.kind]):
            known = ", ".join(measurement_fields(KINDS[self.kind]))
            raise ValueError(
                f"field {self.field!r} of device {self.device} is not a {self.kind} field; use one of "
                f'{known}, or kind = "generic"'
            )
        if self.scale != self.scale or self.scale in (float("inf"), float("-inf")):
            raise ValueError(f"scale of {self.device}.{self.field} must be a finite number")


class OpcuaCollector(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="opcua"
):
    """Reads one OPC UA server through a subscription (or by polling) and a node map.

    Attributes:
        url: the endpoint, ``opc.tcp://host:4840[/path]``.
        name: this connection's name in logs and the doctor's table.
        security_policy: ``None`` or ``Basic256Sha256``.
        security_mode: ``None`` (with policy None), ``Sign`` or ``SignAndEncrypt``.
        certificate, private_key: the gateway's application instance certificate (DER or PEM)
            and its private key (PEM); needed by Basic256Sha256. The server must trust it.
        private_key_password: password of an encrypted private key (empty: not encrypted).
        server_certificate: the server's certificate (DER or PEM) to pin; empty takes the one
            the server offers in its endpoint list (not verified: the doctor warns).
        application_uri: the client's application URI; empty takes the URI in the
            certificate's subjectAltName (servers reject a mismatch), else
            ``urn:parkwatch:edge``.
        username, password: user identity (empty username: anonymous).
        mode: ``subscribe`` (monitored items; falls back to polling when the server does not
            support subscriptions) or ``poll``.
        publishing_interval_s: the subscription's publishing interval: how often the server
            sends the changes it collected.
        sampling_interval_s: default sampling interval of the monitored items.
        poll_interval_s: how often every node is read in ``poll`` mode (and in the fallback).
        report_period_s: a device whose values did not change for this long is reported again
            with its last values (a heartbeat, stamped with the gateway clock).
        timestamps: the time of a reading: ``source`` (the value's SourceTimestamp, else its
            ServerTimestamp), ``server`` (ServerTimestamp) or ``gateway`` (this gateway's clock).
        timeout_s: one request's timeout.
        watchdog_s: how often the connection is probed (a read of the server state) to
            notice a dead server; a dead connection is rebuilt and re-subscribed.
        queue_max: notifications held between two reads; beyond it the oldest are dropped.
        nodes: the node map.
    """

    url: Annotated[str, msgspec.Meta(pattern=r"^opc\.tcp://[^\s/]+(/\S*)?\Z")]
    nodes: Annotated[list[OpcuaNode], msgspec.Meta(min_length=1)]
    name: Id = "opcua"
    security_policy: SecurityPolicy = "None"
    security_mode: SecurityMode = "None"
    certificate: str = ""
    private_key: str = ""
    private_key_password: str = ""
    server_certificate: str = ""
    application_uri: str = ""
    username: str = ""
    password: str = ""
    mode: Literal["subscribe", "poll"] = "subscribe"
    publishing_interval_s: PositiveSeconds = 0.5
    sampling_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 0.25
    poll_interval_s: PositiveSeconds = 1.0
    report_period_s: PositiveSeconds = 60.0
    timestamps: Literal["source", "server", "gateway"] = "source"
    timeout_s: PositiveSeconds = 5.0
    watchdog_s: PositiveSeconds = 5.0
    queue_max: Annotated[int, msgspec.Meta(ge=10, le=1_000_000)] = 10_000

    def __post_init__(self) -> None:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(
                f"collector {self.name}: security_policy {self.security_policy!r} does not go with "
                f'security_mode {self.security_mode!r}; use "None"/"None", or "Basic256Sha256" with '
                '"Sign" or "SignAndEncrypt"'
            )
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError(
                f"collector {self.name}: {self.security_policy} needs certificate and private_key "
                "(the gateway's application certificate and key files; the server must trust the certificate)"
            )
        if self.password and not self.username:
            raise ValueError(f"collector {self.name}: a password without a username; set username too")
        seen: set[tuple[str, str, str]] = set()
        for node in self.nodes:
            key = (node.device, node.kind, node.field)
            if key in seen:
                raise ValueError(
                    f"collector {self.name}: {node.kind} field {node.field!r} of device {node.device} "
                    "is mapped twice; every (device, kind, field) takes one node"
                )
            seen.add(key)
