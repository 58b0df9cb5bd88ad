"""Notifications of alarm state changes: signed webhooks and e-mail over SMTP with STARTTLS.

The evaluator and the operator actions put every visible state change of an alarm in the store's
outbox (one entry per change). :meth:`Notifier.drain` takes the outbox, and for each channel:

- keeps the changes its route selects (parks, priorities, rules);
- sends each at once, one message per change, unless the channel is in its quiet hours (only
  ``critical`` goes out then) or has sent ``max_per_window`` messages in the last ``window_s``;
- holds the others and sends them as **one digest** as soon as it may send again, so a flood of
  alarms becomes a few messages, never a storm;
- retries a failed send with exponential backoff (``backoff_s``, 2x, 4x ... up to
  ``max_attempts``) and writes every attempt to the delivery log.

Held changes live in memory: a restart sends what was in the outbox, not what was held.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Final

import httpx

from settings.api import AlarmSettings, EmailChannel, Route, WebhookChannel
from storage.alarm_store import AlarmStore, Delivery

log = logging.getLogger("parkwatch.alarms.notify")

SIGNATURE_HEADER: Final = "X-Parkwatch-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def selects(route: Route, change: dict[str, Any]) -> bool:
    """Whether a channel's route wants this change (empty lists select everything)."""
    return (
        (not route.parks or change["park"] in route.parks)
        and (not route.priorities or change["priority"] in route.priorities)
        and (not route.rules or change["rule_id"] in route.rules)
    )


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_quiet_hours(route: Route, now_ms: int) -> bool:
    """Whether ``now_ms`` (UTC) lies in the route's quiet hours (a window may cross midnight)."""
    if not route.quiet_start or not route.quiet_end:
        return False
    now = (now_ms // 60_000) % 1440
    start, end = _minutes(route.quiet_start), _minutes(route.quiet_end)
    return start <= now < end if start <= end else now >= start or now < end


@dataclass(slots=True)
class _ChannelState:
    sent_ms: deque[int] = field(default_factory=deque)
    held: list[dict[str, Any]] = field(default_factory=list)


Send = Callable[[dict[str, Any]], Awaitable[str]]
"""Send one message (a change, or a digest); return a short detail for the log, raise on failure."""


class Notifier:
    """Routes outbox entries to the configured channels."""

    def __init__(
        self,
        settings: AlarmSettings,
        store: AlarmStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.channels: list[tuple[str, str, Route, int, float, Send]] = []
        for w in settings.webhooks:
            self.channels.append(("webhook", w.id, w.route, w.max_attempts, w.backoff_s, _webhook(w)))
        for e in settings.email:
            self.channels.append(("email", e.id, e.route, e.max_attempts, e.backoff_s, _email(e)))
        self._state: dict[str, _ChannelState] = {cid: _ChannelState() for _, cid, *_ in self.channels}

    async def drain(self) -> None:
        """Send what the outbox holds (and held digests that may go now); mark the outbox done."""
        pending = await asyncio.to_thread(self.store.pending)
        changes = [body for _, body in pending]
        await asyncio.gather(*(self._channel(ch, changes) for ch in self.channels))
        if pending:
            await asyncio.to_thread(self.store.mark_done, [i for i, _ in pending])

    async def _channel(
        self, ch: tuple[str, str, Route, int, float, Send], changes: Sequence[dict[str, Any]]
    ) -> None:
        kind, cid, route, attempts, backoff_s, send = ch
        st = self._state[cid]
        now = int(self.clock() * 1000)
        while st.sent_ms and st.sent_ms[0] <= now - route.window_s * 1000:
            st.sent_ms.popleft()
        quiet = in_quiet_hours(route, now)
        for c in changes:
            if not selects(route, c):
                continue
            urgent = c["priority"] == "critical"
            limited = len(st.sent_ms) >= route.max_per_window
            # Once changes are held, later ones join them (order kept), except a critical one in
            # quiet hours, which is what quiet hours let through.
            if limited or (quiet and not urgent) or (bool(st.held) and not (quiet and urgent)):
                st.held.append(c)
                continue
            await self._deliver(kind, cid, send, c, [c["id"]], attempts, backoff_s)
            st.sent_ms.append(now)
        if st.held and not quiet and len(st.sent_ms) < route.max_per_window:
            held, st.held = st.held, []
            digest = {
                "digest": True,
                "count": len(held),
                "changes": held,
                "summary": f"{len(held)} alarm changes",
                "park": ",".join(sorted({h["park"] for h in held})),
                "priority": max(
                    (h["priority"] for h in held), key=["low", "medium", "high", "critical"].index
                ),
            }
            await self._deliver(kind, cid, send, digest, [h["id"] for h in held], attempts, backoff_s)
            st.sent_ms.append(now)

    async def _deliver(
        self,
        kind: str,
        cid: str,
        send: Send,
        msg: dict[str, Any],
        ids: list[int],
        attempts: int,
        backoff_s: float,
    ) -> bool:
        for attempt in range(1, attempts + 1):
            try:
                detail = await send(msg)
            except (httpx.HTTPError, OSError, smtplib.SMTPException, DeliveryError) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            else:
                ok = True
            await asyncio.to_thread(
                self.store.log_delivery,
                Delivery(channel=kind, target=cid, alarm_ids=tuple(ids), attempt=attempt, ok=ok, detail=detail[:500],
                         at_ms=int(self.clock() * 1000)),
            )  # fmt: skip
            if ok:
                return True
            log.warning("%s %s attempt %d/%d failed: %s", kind, cid, attempt, attempts, detail)
            if attempt < attempts:
                await self.sleep(backoff_s * 2 ** (attempt - 1))
        return False


class DeliveryError(Exception):
    """A receiver answered but refused the message (non-2xx)."""


def _webhook(ch: WebhookChannel) -> Send:
    async def send(msg: dict[str, Any]) -> str:
        body = json.dumps(msg, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(ch.secret, body),
            "User-Agent": "parkwatch-alarms",
        }
        async with httpx.AsyncClient(timeout=ch.timeout_s) as client:
            resp = await client.post(ch.url, content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"HTTP {resp.status_code}")
        return f"HTTP {resp.status_code}"

    return send


def email_message(ch: EmailChannel, msg: dict[str, Any]) -> EmailMessage:
    """The e-mail of one change or digest (plain text, the JSON attached as text)."""
    m = EmailMessage()
    m["From"] = ch.sender
    m["To"] = ", ".join(ch.to)
    if msg.get("digest"):
        m["Subject"] = f"[parkwatch] {msg['count']} alarm changes ({msg['park']})"
        lines = [
            f"{c['priority'].upper()} {c['park']} {c['source']} {c['rule_id']}: {c['state']} - {c['message']}"
            for c in msg["changes"]
        ]
    else:
        m["Subject"] = f"[parkwatch] {msg['priority'].upper()} {msg['park']} {msg['source']}: {msg['state']}"
        lines = [
            f"{msg['rule_id']}: {msg['message']}",
            f"state: {msg['state']} (was {msg.get('previous_state')})",
            f"raised: {msg['raised_at']}",
        ]
    m.set_content("\n".join(lines) + "\n")
    return m


def _email(ch: EmailChannel) -> Send:
    def send_blocking(msg: dict[str, Any]) -> str:
        with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_s) as smtp:
            smtp.ehlo()
            if ch.starttls:
                ctx = ssl.create_default_context(cafile=ch.cafile or None)
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if ch.username:
                smtp.login(ch.username, ch.password)
            refused = smtp.send_message(email_message(ch, msg))
        if refused:
            raise DeliveryError(f"refused recipients: {sorted(refused)}")
        return f"sent to {len(ch.to)} recipient(s)"

    async def send(msg: dict[str, Any]) -> str:
        return await asyncio.to_thread(send_blocking, msg)

    return send
