"""``parkwatch edge doctor`` rows of the OPC UA collectors: endpoint, security, every node.

For each ``[[collectors]] type = "opcua"``:

``opcua <name> endpoint``  the server answers GetEndpoints and offers the configured policy and mode
``opcua <name> security``  a session opens with that security, certificate and user
``opcua <name> nodes``     every node of the map is found and read; a FAIL row per bad node names it
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from asyncua import ua
from asyncua.client.client import Client

from edge_agent.collectors.opcua_client import (
    CLIENT_ERRORS,
    close_client,
    describe,
    open_client,
    resolve_nodes,
    sample_of,
    security_text,
)
from edge_agent.collectors.opcua_values import convert_value
from edge_agent.doctor import Check, tcp_reachable
from edge_agent.errors import DeviceError
from settings.edge_opcua import OpcuaCollector


async def _endpoints(cfg: OpcuaCollector) -> list[ua.EndpointDescription]:
    client = Client(cfg.url, timeout=cfg.timeout_s)
    async with asyncio.timeout(cfg.timeout_s * 2):
        return await client.connect_and_get_server_endpoints()


def _offered(endpoints: list[ua.EndpointDescription]) -> list[str]:
    out = []
    for e in endpoints:
        policy = e.SecurityPolicyUri.rsplit("#", 1)[-1]
        out.append(f"{policy}/{e.SecurityMode.name.rstrip('_')}")
    return sorted(set(out))


async def check_server(cfg: OpcuaCollector) -> list[Check]:
    """The three kinds of rows for one server (see the module docstring)."""
    name = _row(cfg)
    url = urlparse(cfg.url)
    why = tcp_reachable(url.hostname or "", url.port or 4840)
    if why is not None:
        return [
            Check(
                f"{name} endpoint",
                "fail",
                f"cannot reach {cfg.url}: {why}",
                "check url (host and port, 4840 by default), the route and the firewall; is the server running?",
            )
        ]
    try:
        endpoints = await _endpoints(cfg)
    except CLIENT_ERRORS as exc:
        return [
            Check(
                f"{name} endpoint",
                "fail",
                f"{cfg.url} accepts TCP but does not answer GetEndpoints: {describe(exc)}",
                "is this port an OPC UA (opc.tcp) endpoint?",
            )
        ]
    offered = _offered(endpoints)
    wanted = f"{cfg.security_policy}/{cfg.security_mode}"
    if wanted not in offered:
        return [
            Check(
                f"{name} endpoint",
                "fail",
                f"the server does not offer {wanted}; it offers {', '.join(offered)}",
                "set security_policy/security_mode to one the server offers, or enable it on the server",
            )
        ]
    checks = [Check(f"{name} endpoint", "pass", f"{cfg.url} offers {wanted} (of {', '.join(offered)})")]
    try:
        client = await open_client(cfg)
    except DeviceError as exc:
        checks.append(Check(f"{name} security", "fail", str(exc), _security_fix(cfg, str(exc))))
        return checks
    try:
        pinned = "server certificate pinned" if cfg.server_certificate else ""
        if cfg.security_policy != "None" and not cfg.server_certificate:
            checks.append(
                Check(
                    f"{name} security",
                    "warn",
                    f"session open ({security_text(cfg)}); the server certificate was taken from its "
                    "endpoint list, NOT verified",
                    "set server_certificate to the server's certificate file to pin it",
                )
            )
        else:
            checks.append(
                Check(f"{name} security", "pass", f"session open ({security_text(cfg)}) {pinned}".strip())
            )
        checks.extend(await _check_nodes(cfg, client))
    finally:
        await close_client(client, healthy=True)
    return checks


def _row(cfg: OpcuaCollector) -> str:
    return "opcua" if cfg.name == "opcua" else f"opcua {cfg.name}"


def _security_fix(cfg: OpcuaCollector, text: str) -> str:
    if "Identity" in text or "User" in text:
        return "check username/password (or the server's user list); anonymous access may be off"
    if cfg.security_policy != "None":
        return (
            "make the server trust this gateway's certificate (copy it to the server's trusted folder), "
            "check certificate/private_key paths and that the certificate's URI matches application_uri"
        )
    return "check the server's log for why it refused the session"


async def _check_nodes(cfg: OpcuaCollector, client: Client) -> list[Check]:
    name = _row(cfg)
    resolved = await resolve_nodes(client, cfg.nodes)
    found = [(i, n) for i, n in enumerate(resolved) if not isinstance(n, str)]
    values = await client.read_attributes([n for _, n in found]) if found else []
    bad: list[Check] = []
    for i, why in enumerate(resolved):
        if isinstance(why, str):
            spec = cfg.nodes[i]
            bad.append(Check(f"{name} node {spec.device}.{spec.field}", "fail", why, _node_fix(cfg)))
    for (i, _), dv in zip(found, values, strict=True):
        spec = cfg.nodes[i]
        s = sample_of(i, dv)
        where = spec.node_id or spec.browse_path
        if not s.good:
            bad.append(
                Check(
                    f"{name} node {spec.device}.{spec.field}",
                    "fail",
                    f"{where}: status {s.status}",
                    _node_fix(cfg),
                )
            )
            continue
        try:
            convert_value(spec, s.value)
        except ValueError as exc:
            bad.append(
                Check(
                    f"{name} node {spec.device}.{spec.field}",
                    "fail",
                    f"{where}: {exc}",
                    "fix kind/field/scale/enum of this node in the node map",
                )
            )
    good = len(cfg.nodes) - len(bad)
    summary = Check(
        f"{name} nodes",
        "pass" if not bad else "fail",
        f"{good} of {len(cfg.nodes)} nodes found and read",
        "" if not bad else "see the rows below",
    )
    return [summary, *bad]


def _node_fix(cfg: OpcuaCollector) -> str:
    return (
        f"fix node_id/browse_path in the node map; `parkwatch edge init --opcua {cfg.url} --out FILE` "
        "writes the NodeIds the server has"
    )


def check_all(collectors: list[OpcuaCollector]) -> list[Check]:
    """The rows of every OPC UA collector."""

    async def run() -> list[Check]:
        out: list[Check] = []
        for cfg in collectors:
            out.extend(await check_server(cfg))
        return out

    return asyncio.run(run())
