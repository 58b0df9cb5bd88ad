"""``parkwatch edge doctor``: check a gateway's setup and say how to fix each failure.

Checks, in order: config, clock, broker reachability, TLS, credentials, ACL (a test publish on
the gateway's ``up/doctor`` probe topic and a subscription to the config topic), then every
configured device. The probe topic is inside the gateway's ``up/#`` ACL but no ingester reads it,
so the doctor never makes a gateway look online or adds to its loss ledger.
A failed config stops there; a broker that cannot be reached skips the MQTT checks after it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.readings import Broadband
from edge_agent.collectors import build_collectors
from edge_agent.errors import DeviceError
from mqttlink import LOGIN_REFUSED, connect_properties, make_client, open_connection, tls_context
from settings.common import BrokerSettings
from settings.edge import EdgeSettings
from settings.edge_opcua import OpcuaCollector
from settings.errors import ConfigError
from settings.loader import load_settings

Result = Literal["pass", "fail", "warn", "skip"]


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the doctor's table."""

    name: str
    result: Result
    detail: str
    fix: str = ""


def check_config(path: str | None) -> tuple[EdgeSettings | None, Check]:
    """Load the settings; the row names the file read (``--config`` or ``PARKWATCH_CONFIG``)."""
    path = path or os.environ.get("PARKWATCH_CONFIG") or None
    try:
        settings = load_settings(EdgeSettings, path)
    except ConfigError as exc:
        return None, Check(
            "config",
            "fail",
            str(exc),
            "edit the named key (see config/edge.toml), or run `parkwatch edge init`",
        )
    n = sum(
        len(c.devices) if hasattr(c, "devices") else len(getattr(c, "modems", [])) or 1
        for c in settings.collectors
    )
    return settings, Check(
        "config",
        "pass",
        f"{path or 'no config file (defaults and PARKWATCH_* variables)'}: park {settings.agent.park}, gateway {settings.agent.gateway}, {n} devices",
    )


def check_clock() -> Check:
    """System time plausible and NTP-synchronised (when timedatectl can tell)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if now < 1_704_067_200:  # 2024-01-01: a clock before this is surely unset (RTC-less board)
        return Check(
            "clock",
            "fail",
            f"system time {stamp} is in the past",
            "enable NTP: timedatectl set-ntp true (or set the date)",
        )
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out == "no":
            return Check(
                "clock",
                "warn",
                f"{stamp}, not NTP-synchronised",
                "timedatectl set-ntp true; readings are stamped with this clock",
            )
        if out == "yes":
            return Check("clock", "pass", f"{stamp}, NTP-synchronised")
    return Check("clock", "pass", f"{stamp} (synchronisation state unknown)")


def tcp_reachable(host: str, port: int, timeout_s: float = 3.0) -> str | None:
    """None when a TCP connection to ``host:port`` opens, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def check_broker(s: EdgeSettings) -> Check:
    """TCP reachability of the broker."""
    b = s.broker
    why = tcp_reachable(b.host, b.port, timeout_s=5)
    if why is None:
        return Check("broker", "pass", f"{b.host}:{b.port} accepts TCP connections")
    return Check(
        "broker",
        "fail",
        f"cannot reach {b.host}:{b.port}: {why}",
        "check [broker] host/port, the network route and the firewall; is the broker running?",
    )


def check_tls(s: EdgeSettings) -> Check:
    """A TLS handshake with the configured CA."""
    b = s.broker
    if b.tls is None:
        warn = b.port == 8883
        return Check(
            "tls",
            "warn" if warn else "skip",
            "not configured (plain MQTT)",
            "port 8883 usually needs TLS: add [broker.tls]" if warn else "",
        )
    try:
        ctx = tls_context(b.tls)
    except (OSError, ssl.SSLError) as exc:
        return Check("tls", "fail", f"cannot load the TLS files: {exc}", "check the paths in [broker.tls]")
    try:
        with (
            socket.create_connection((b.host, b.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=b.host) as tls,
        ):
            if b.tls.insecure_skip_verify:
                return Check(
                    "tls",
                    "warn",
                    f"{tls.version()}, certificate NOT verified (insecure_skip_verify = true)",
                    "set [broker.tls] ca_file to the broker's CA and remove insecure_skip_verify",
                )
            return Check("tls", "pass", f"{tls.version()}, certificate accepted")
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "tls",
            "fail",
            f"certificate not trusted: {exc.verify_message}",
            "set [broker.tls] ca_file to the CA that signed the broker certificate; check the host name",
        )
    except (OSError, ssl.SSLError) as exc:
        return Check(
            "tls",
            "fail",
            f"TLS handshake failed: {exc}",
            "is this port a TLS listener? check [broker] port and [broker.tls]",
        )


PROBE_CHANNEL = "doctor"
"""The doctor's test publish goes to ``.../up/doctor``: allowed like every ``up/`` topic, read by nobody."""

_AUTH_FIX = (
    "set [broker] username/password to this gateway's credentials (provisioning API or broker password file)"
)


def check_mqtt(s: EdgeSettings, timeout_s: float = 8.0) -> list[Check]:
    """Connect with the credentials, publish a test status, subscribe to the config topic."""
    b = s.broker
    # A broker that ties client ids to usernames (the deploy Mosquitto) gives the doctor the
    # agent's own id and session. So start without wiping a session (a stopped agent's queued
    # commands) and acknowledge nothing: every queued message stays for the agent. A session
    # the doctor created itself is removed when it leaves.
    client = make_client(b, client_id=f"{s.client_id}-doctor", clean=False)
    client.manual_ack_set(True)
    state: dict[str, Any] = {}

    def on_connect(c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        state.setdefault("session_present", bool(flags.session_present))
        state.setdefault("connack", rc)

    client.on_connect = on_connect
    client.on_publish = lambda c, u, mid, rc, props: state.setdefault("puback", rc)
    client.on_subscribe = lambda c, u, mid, rcs, props: state.setdefault("suback", rcs)
    client.on_disconnect = lambda c, u, flags, rc, props: state.setdefault("disconnect", rc)

    def pump(key: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while key not in state and "disconnect" not in state and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        return state.get(key)

    try:
        open_connection(client, b, connect_properties(b, session_expiry_s=s.agent.session_expiry_s))
    except (OSError, ValueError) as exc:
        return [Check("credentials", "skip", f"no MQTT session: {exc}", "fix the broker check first")]
    connack: ReasonCode | None = pump("connack")
    if connack is None:
        client.disconnect()
        if b.protocol == "5" and _answers_mqtt311(s, timeout_s):
            return [
                Check(
                    "credentials",
                    "fail",
                    "the broker answers MQTT 3.1.1 but not MQTT 5 (no CONNACK to an MQTT 5 CONNECT)",
                    'set [broker] protocol = "3.1.1" (the embedded broker of `parkwatch demo` speaks only 3.1.1)',
                )
            ]
        return [
            Check(
                "credentials",
                "fail",
                f"no CONNACK from the broker to an MQTT {b.protocol} CONNECT",
                "is this port an MQTT listener (and TLS on/off matching)?",
            )
        ]
    if connack.is_failure:
        text = str(connack)
        if connack.value in LOGIN_REFUSED:
            detail = f"broker refused the login ({text}) for user {b.username or '(anonymous)'!r}"
            return [Check("credentials", "fail", detail, _AUTH_FIX)]
        return [Check("credentials", "fail", f"broker refused the connection: {text}", "see the broker log")]
    checks = [
        Check("credentials", "pass", f"logged in as {b.username or '(anonymous)'} with MQTT {b.protocol}")
    ]
    from contract.topics import topic_for

    status_topic = topic_for(s.agent.park, s.agent.gateway, "status", root=b.topic_root)
    probe_topic = status_topic.rsplit("/", 1)[0] + "/" + PROBE_CHANNEL
    config_topic = topic_for(s.agent.park, s.agent.gateway, "config", root=b.topic_root)
    client.publish(probe_topic, b"parkwatch edge doctor: ACL test", qos=1, retain=False)
    puback: ReasonCode | None = pump("puback")
    if puback is None:
        checks.append(
            Check(
                "acl publish",
                "fail",
                f"no PUBACK for a test publish on {probe_topic}",
                "the broker dropped the connection: check its ACL for this user",
            )
        )
    elif puback.is_failure:
        checks.append(
            Check(
                "acl publish",
                "fail",
                f"publish on {probe_topic} refused: {puback}",
                f"allow this user to write {b.topic_root}/v1/{s.agent.park}/{s.agent.gateway}/up/#",
            )
        )
    else:
        note = (
            ""
            if b.protocol == "5"
            else " (MQTT 3.1.1 cannot report an ACL refusal; use protocol 5 to be sure)"
        )
        checks.append(Check("acl publish", "pass", f"test publish on {probe_topic} acknowledged{note}"))
    client.subscribe(config_topic, qos=1)
    suback = pump("suback")
    granted = [getattr(rc, "value", rc) for rc in (suback or [])]
    if not granted or any(g >= 0x80 for g in granted):
        checks.append(
            Check(
                "acl subscribe",
                "fail",
                f"subscription to {config_topic} refused",
                f"allow this user to read {b.topic_root}/v1/{s.agent.park}/{s.agent.gateway}/down/#",
            )
        )
    else:
        checks.append(
            Check(
                "acl subscribe",
                "pass",
                f"subscription to {config_topic} accepted (brokers may still filter deliveries)",
            )
        )
    _leave(client, b, created_session=not state.get("session_present", True))
    return checks


def _leave(client: mqtt.Client, b: BrokerSettings, *, created_session: bool) -> None:
    """Disconnect; on MQTT 5 a session the doctor created ends with it (expiry 0)."""
    if created_session and b.protocol == "5":
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        client.disconnect(properties=props)
    else:
        client.disconnect()
    client.loop(timeout=0.1)


def _answers_mqtt311(s: EdgeSettings, timeout_s: float) -> bool:
    """Whether the broker sends a CONNACK (of any result) to an MQTT 3.1.1 CONNECT."""
    broker = msgspec.structs.replace(s.broker, protocol="3.1.1")
    client = make_client(broker, client_id=f"{s.client_id}-doctor", clean=True)
    got: list[Any] = []
    client.on_connect = lambda c, u, flags, rc, props: got.append(rc)
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + timeout_s
    while not got and time.monotonic() < deadline:
        if client.loop(timeout=0.1) != 0:
            break
    client.disconnect()
    return bool(got)


async def check_devices(s: EdgeSettings, timeout_s: float = 10.0) -> list[Check]:
    """Read every configured device once (OPC UA servers have their own rows: :mod:`edge_agent.doctor_opcua`)."""
    out: list[Check] = []
    for c in build_collectors([c for c in s.collectors if not isinstance(c, OpcuaCollector)]):
        name = f"device {c.device}"
        try:
            async with asyncio.timeout(timeout_s):
                readings = await c.read()
            silent = [r.target for r in readings if isinstance(r, Broadband) and r.ipv4_ok is False]
            if silent:
                out.append(
                    Check(
                        name,
                        "fail",
                        f"probe target(s) {', '.join(silent)} did not answer (100 % loss)",
                        _probe_fix(c, silent),
                    )
                )
            else:
                out.append(Check(name, "pass", f"{type(c).__name__}: read {len(readings)} reading(s)"))
        except DeviceError as exc:
            out.append(Check(name, "fail", str(exc), exc.fix or _device_fix(c)))
        except TimeoutError:
            out.append(Check(name, "fail", f"no answer within {timeout_s}s", _device_fix(c)))
        finally:
            await c.aclose()
    return out


def _device_fix(c: Any) -> str:
    cfg = getattr(c, "cfg", None)
    if cfg is not None and getattr(cfg, "bus", None):
        return f"check that unit {cfg.unit_id} on bus {cfg.bus} is powered and wired (A/B, termination), its serial settings and its register map"
    if cfg is not None and hasattr(cfg, "host") and hasattr(cfg, "unit_id"):
        return f"check that the device is powered and reachable at {cfg.host}:{cfg.port} (unit {cfg.unit_id}) and its register map"
    if cfg is not None and hasattr(cfg, "address"):
        return f"check the modem at {cfg.address} (cable/port, baudrate, nothing else holding the port)"
    return "check the device's address and that it is reachable from the gateway"


def _probe_fix(c: Any, names: list[str]) -> str:
    cfg = getattr(c, "cfg", None)
    where = [f"{t.host}:{t.port}" for t in getattr(cfg, "targets", []) if t.name in names]
    return (
        f"check that {', '.join(where) or 'the target'} is reachable from the gateway and serves the probe "
        "(GET /ping), or fix host/port of [[collectors.targets]]"
    )


def run_checks(path: str | None) -> list[Check]:
    """Every check, in order."""
    settings, cfg = check_config(path)
    checks = [cfg]
    if settings is None:
        return checks
    checks.append(check_clock())
    broker = check_broker(settings)
    checks.append(broker)
    if broker.result == "pass":
        tls = check_tls(settings)
        checks.append(tls)
        if tls.result != "fail":
            checks.extend(check_mqtt(settings))
    else:
        checks.append(Check("credentials", "skip", "broker not reachable", "fix the broker check first"))
    checks.extend(asyncio.run(check_devices(settings)))
    opcua = [c for c in settings.collectors if isinstance(c, OpcuaCollector)]
    if opcua:
        from edge_agent.doctor_opcua import check_all

        checks.extend(check_all(opcua))
    return checks


def render_table(checks: list[Check], *, color: bool = False) -> str:
    """A plain-text pass/fail table with the fix under each failure."""
    marks = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
    colors = {"pass": "\033[32m", "fail": "\033[31m", "warn": "\033[33m", "skip": "\033[90m"}
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = marks[c.result]
        if color:
            mark = f"{colors[c.result]}{mark}\033[0m"
        lines.append(f"{c.name.ljust(width)}  {mark}  {c.detail}")
        if c.fix and c.result in ("fail", "warn"):
            lines.append(f"{' ' * width}        fix: {c.fix}")
    failed = sum(c.result == "fail" for c in checks)
    lines.append("")
    lines.append(f"{failed} check(s) failed" if failed else "all checks passed")
    return "\n".join(lines)
