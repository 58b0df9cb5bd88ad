"""Notifications against real local receivers: an HTTP server for webhooks, aiosmtpd with STARTTLS
(a self-signed certificate made with ``cryptography``) for e-mail. Backoff delays go through an
injected sleep that records them, the clock is injected so quiet hours and rate windows are exact."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.alarms.engine import AlarmEngine
from api.alarms.notify import SIGNATURE_HEADER, Notifier, in_quiet_hours
from api.services.alarms import Condition, Key
from settings.api import AlarmRule, AlarmSettings, EmailChannel, Route
from settings.loader import settings_from_dict
from storage.alarm_store import AlarmStore
from tests.servers import free_port

pytestmark = pytest.mark.integration

SECRET = "a-long-shared-secret-0123456789"
DAY0 = int(dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp() * 1000)


# -- a real webhook receiver -------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if rec.fail_first > 0:
                rec.fail_first -= 1
                self.send_response(503)
            else:
                rec.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                rec.arrived.set()
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# -- a real SMTP server with STARTTLS ---------------------------------------------------------


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[bool, str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (session.ssl is not None, envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 OK"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True)
    controller.start()
    try:
        yield box, port, cert
    finally:
        controller.stop()


# -- helpers ----------------------------------------------------------------------------------


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, s: float) -> None:
        self.delays.append(s)


def change(
    i: int, *, park: str = "p1", priority: str = "high", state: str = "active_unacknowledged"
) -> dict[str, Any]:
    return {
        "id": i, "rule_id": "hot", "park": park, "source": f"gw-1/m{i}", "priority": priority, "state": state,
        "message": f"machine m{i} hot", "raised_at": "2026-12-01T00:00:00.000Z", "change": "activated",
        "previous_state": None,
    }  # fmt: skip


def webhook(url: str, **route: Any) -> AlarmSettings:
    return settings_from_dict(
        AlarmSettings,
        {"webhooks": [{"id": "ops", "url": url, "secret": SECRET, "backoff_s": 0.5, "route": route}]},
    )


# -- tests ------------------------------------------------------------------------------------


def test_webhook_is_signed_and_retried_with_backoff(tmp_path: Path, receiver: Receiver) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    store.enqueue(change(1), DAY0)
    receiver.fail_first = 2
    sleeps = Sleeps()
    asyncio.run(Notifier(webhook(receiver.url), store, clock=Clock(DAY0), sleep=sleeps).drain())
    ((headers, body),) = receiver.got
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.lower()] == expected
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["source"] == "gw-1/m1"
    assert sleeps.delays == [0.5, 1.0]  # exponential backoff between the three attempts
    log = sorted(store.deliveries(), key=lambda d: d.attempt)
    assert [(d.attempt, d.ok, d.detail) for d in log] == [
        (1, False, "DeliveryError: HTTP 503"),
        (2, False, "DeliveryError: HTTP 503"),
        (3, True, "HTTP 204"),
    ]
    assert store.pending() == []  # the outbox entry is done


def test_rate_limit_turns_a_flood_into_a_digest(tmp_path: Path, receiver: Receiver) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    clock = Clock(DAY0)
    n = Notifier(webhook(receiver.url, max_per_window=2, window_s=600), store, clock=clock, sleep=Sleeps())
    for i in range(1, 26):
        store.enqueue(change(i), DAY0)
    asyncio.run(n.drain())
    assert [json.loads(b)["id"] for _, b in receiver.got] == [1, 2]
    clock.ms += 600_001
    asyncio.run(n.drain())
    assert len(receiver.got) == 3
    digest = json.loads(receiver.got[2][1])
    assert digest["digest"] is True and digest["count"] == 23
    assert [c["id"] for c in digest["changes"]] == list(range(3, 26))


def test_routing_by_park_priority_and_rule(tmp_path: Path, receiver: Receiver) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    n = Notifier(
        webhook(receiver.url, parks=["p2"], priorities=["critical"]), store, clock=Clock(DAY0), sleep=Sleeps()
    )
    store.enqueue(change(1, park="p1", priority="critical"), DAY0)
    store.enqueue(change(2, park="p2", priority="low"), DAY0)
    store.enqueue(change(3, park="p2", priority="critical"), DAY0)
    asyncio.run(n.drain())
    assert [json.loads(b)["id"] for _, b in receiver.got] == [3]


def test_quiet_hours_hold_all_but_critical_until_morning(tmp_path: Path, receiver: Receiver) -> None:
    store = AlarmStore(tmp_path / "r.sqlite")
    clock = Clock(DAY0 + 23 * 3_600_000)  # 23:00 UTC
    n = Notifier(
        webhook(receiver.url, quiet_start="22:00", quiet_end="06:00"), store, clock=clock, sleep=Sleeps()
    )
    store.enqueue(change(1, priority="low"), clock.ms)
    store.enqueue(change(2, priority="critical"), clock.ms)
    asyncio.run(n.drain())
    assert [json.loads(b)["id"] for _, b in receiver.got] == [2]
    clock.ms = DAY0 + 30 * 3_600_000 + 60_000  # 06:01 the next day
    asyncio.run(n.drain())
    digest = json.loads(receiver.got[1][1])
    assert digest["digest"] and [c["id"] for c in digest["changes"]] == [1]


@pytest.mark.parametrize(
    ("hhmm", "quiet"), [("21:59", False), ("22:00", True), ("03:00", True), ("05:59", True), ("06:00", False)]
)
def test_quiet_window_across_midnight(hhmm: str, quiet: bool) -> None:
    h, m = map(int, hhmm.split(":"))
    route = Route(quiet_start="22:00", quiet_end="06:00")
    assert in_quiet_hours(route, DAY0 + (h * 60 + m) * 60_000) is quiet


def test_email_over_starttls(tmp_path: Path, smtp: tuple[Mailbox, int, Path]) -> None:
    box, port, cert = smtp
    settings = AlarmSettings(
        email=[
            EmailChannel(id="ops-mail", host="127.0.0.1", port=port, cafile=str(cert), sender="parkwatch@example.org",
                         to=["ops@example.org"], backoff_s=0.1)
        ]
    )  # fmt: skip
    store = AlarmStore(tmp_path / "r.sqlite")
    store.enqueue(change(7, priority="critical"), DAY0)
    asyncio.run(Notifier(settings, store, clock=Clock(DAY0), sleep=Sleeps()).drain())
    ((tls, sender, rcpt, content),) = box.messages
    assert tls is True  # the server requires STARTTLS; the message came over TLS
    assert (sender, rcpt) == ("parkwatch@example.org", ["ops@example.org"])
    text = content.decode()
    assert "Subject: [parkwatch] CRITICAL p1 gw-1/m7: active_unacknowledged" in text
    assert [d.ok for d in store.deliveries()] == [True]


@pytest.mark.allow_error_logs  # the SMTP server logs the client's refused handshake as an error
def test_email_refused_without_a_trusted_certificate_is_logged(
    tmp_path: Path, smtp: tuple[Mailbox, int, Path]
) -> None:
    box, port, _ = smtp
    settings = AlarmSettings(
        email=[EmailChannel(id="m", host="127.0.0.1", port=port, sender="a@example.org", to=["b@example.org"],
                            max_attempts=2, backoff_s=0.1)]
    )  # fmt: skip
    store = AlarmStore(tmp_path / "r.sqlite")
    store.enqueue(change(1), DAY0)
    sleeps = Sleeps()
    asyncio.run(Notifier(settings, store, clock=Clock(DAY0), sleep=sleeps).drain())
    assert box.messages == []
    log = store.deliveries()
    assert len(log) == 2 and not any(d.ok for d in log) and "CERTIFICATE_VERIFY_FAILED" in log[0].detail
    assert sleeps.delays == [0.1]


class Holding:
    def __init__(self) -> None:
        self.on = True

    def evaluate(
        self, rule: AlarmRule, now_ms: int, active: set[Key], memory: dict[str, object]
    ) -> dict[Key, Condition]:
        if rule.id != "hot" or not self.on:
            return {}
        return {("p1", "gw-1/m1"): Condition(park="p1", source="gw-1/m1", since_ms=now_ms, message="hot")}

    def machine_states(self, now_ms: int) -> dict[Key, str]:
        return {}


def test_one_notification_per_state_change_end_to_end(tmp_path: Path, receiver: Receiver) -> None:
    settings = settings_from_dict(
        AlarmSettings,
        {
            "rules": [{"id": "hot", "kind": "machine", "field": "spindle_temp_c", "threshold": 80}],
            "machine_fault_after_s": 0,
            "webhooks": [{"id": "ops", "url": receiver.url, "secret": SECRET}],
        },
    )
    store = AlarmStore(tmp_path / "r.sqlite")
    cond = Holding()
    engine = AlarmEngine(settings, store, cond)
    engine.seed(DAY0)
    n = Notifier(settings, store, clock=Clock(DAY0), sleep=Sleeps())
    for i in range(5):  # the condition holds through five evaluations: one alarm, one message
        engine.evaluate(DAY0 + i * 10_000)
        asyncio.run(n.drain())
    assert [json.loads(b)["state"] for _, b in receiver.got] == ["active_unacknowledged"]
    cond.on = False
    engine.evaluate(DAY0 + 60_000)
    engine.evaluate(DAY0 + 70_000)
    asyncio.run(n.drain())
    assert [json.loads(b)["state"] for _, b in receiver.got] == [
        "active_unacknowledged",
        "cleared_unacknowledged",
    ]
