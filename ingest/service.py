"""The ingester service: one ``asyncio.TaskGroup`` of named loops.

::

    mqtt ──► inbox ──► process (validate, dead-letter, H3, ledger, batch) ──► write queue ──► write
     ▲         (bounded by max_unacked)                                            │  sink ok: write
     └──────────────────────── ack after the write or the spool ◄──────────────────┘  sink down: spool
                                                                     replay: spool ──► sink, in order

A batch that the sink refuses for its content is narrowed down to the rows at fault, which are
dead-lettered, and the rest is stored (:mod:`ingest.isolate`): it is never spooled or retried.
A sink error that repeats for the same spooled batch turns ``/healthz`` to ``degraded``.

Shutdown (SIGTERM): stop reading from the broker, process what was received, flush, write or
spool it, send the acks, disconnect (the persistent session stays), then cancel what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from contract.codec import decode_batch, decode_message
from contract.errors import ContractError, TopicError
from contract.limits import MAX_PAYLOAD_BYTES
from contract.messages import Status
from contract.topics import Topic, parse_topic, subscription
from ingest.deadletter_log import DeadLetterSummary
from ingest.enrich import CellLocator
from ingest.errors import ConfigError, RetryableError
from ingest.isolate import write_isolating
from ingest.ledger import LossLedger, Outcome
from ingest.metrics import Metrics, serve_metrics
from ingest.model import DeadLetter, Part, StatusRow, WriteBatch, WriteResult
from ingest.mqtt import Message, MqttConsumer
from ingest.normalise import OperatorNames
from ingest.points import truncate_raw
from ingest.repair import ConfirmOutbox, Notes
from ingest.sinks.base import Sink, load_sink
from ingest.sparkplug.topics import NAMESPACE as SPARKPLUG_NAMESPACE
from ingest.spool import Spool, SpoolCorrupt, SpoolFull
from mqttlink import jittered_backoff
from settings.ingest import InfluxSinkSettings, IngestSettings
from settings.ports import write_port_file
from storage.places import Places

if TYPE_CHECKING:
    from ingest.sparkplug.host import SparkplugHost

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000
_WRITE_QUEUE = 2
"""Batches between the processor and the writer: one being written, one or two filling."""
_TOPIC_CACHE_MAX = 100_000
_YIELD_EVERY = 256
"""Messages processed back to back (a few ms) before the processor lets other tasks run."""
DEGRADED_AFTER = 3
"""Failed tries of the same batch after which ``/healthz`` reports ``degraded``."""


class _Wake:
    """The inbox item that wakes the processor when a writer became free."""


_WAKE: Final = _Wake()


class UniqueClock:
    """Nanosecond timestamps that never repeat within the process (dead-letter identities)."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        self._last = max(time.time_ns(), self._last + 1)
        return self._last


@dataclass(slots=True)
class _Pending:
    batch: WriteBatch = field(default_factory=WriteBatch)
    messages: list[Message] = field(default_factory=list)
    readings: int = 0
    size: int = 0
    """The messages' :attr:`Message.size` summed (released from flow control by their ack)."""
    notes: Notes = field(default_factory=dict)
    """The gateways' batches the messages carried, confirmed once the batch is durable."""
    started: float = 0.0


class Ingester:
    """The ingest service for one settings object.

    Args:
        settings: validated settings.
        sink: a sink to use instead of the one named in the settings (tests).
        delay: backoff delay by attempt for sink retries (injectable for tests).
    """

    def __init__(
        self,
        settings: IngestSettings,
        *,
        sink: Sink | None = None,
        delay: Callable[[int], float] | None = None,
    ) -> None:
        self.settings = settings
        opts = settings.ingest
        self.src = settings.client_id
        self.sink = sink if sink is not None else load_sink(settings.sink, src=self.src)
        self.metrics = Metrics()
        self.ledger = LossLedger(ingester=self.src)
        self.locator = CellLocator(opts.h3_resolution, opts.gateway_positions)
        self.dropped_fields: Counter[str] = Counter()
        """Fields dropped from kept readings, by reason key (the rest of dead_letter_reasons refused)."""
        self.operators = OperatorNames(opts.operator_aliases, opts.operators_by_plmn)
        self._renames = bool(self.operators)
        self.dead_letter_summary = DeadLetterSummary(opts.dead_letter_summary_s, time.monotonic())
        self.known_parks: frozenset[str] | None = None
        """Parks of the registry (None: no registry read yet); gateways likewise, as (park, gw)."""
        self.known_gateways: frozenset[tuple[str, str]] = frozenset()
        self._max_age_ms = int(opts.max_age_days * _DAY_MS) or None
        self._import_max_age_ms = int(opts.import_max_age_days * _DAY_MS) or None
        self.spool = Spool(opts.spool_dir, max_bytes=int(opts.spool_max_mb * 1024 * 1024))
        backoff = jittered_backoff(opts.retry_min_s, opts.retry_max_s)
        # Sink retries count attempts from 0; the backoff counts from 1.
        self._delay = delay or (lambda attempt: backoff(attempt + 1))
        self._clock = UniqueClock()
        self._root = settings.broker.topic_root
        self._refuse_unknown = opts.refuse_unknown != "none"
        self._topics: dict[str, Topic | str] = {}
        """Topics seen, parsed, or why they are refused (bounded: cleared when full)."""
        share = opts.share_group or None
        filters = [
            subscription("telemetry", root=self._root, park=opts.park, share_group=share),
            subscription("status", root=self._root, park=opts.park, share_group=share),
        ]
        self.sparkplug: SparkplugHost | None = None
        if settings.sparkplug.enabled:
            from ingest.sparkplug.host import SparkplugHost  # protobuf only where Sparkplug is on

            self.sparkplug = SparkplugHost(
                settings.sparkplug,
                host_id=settings.sparkplug.host_id or _host_id(self.src),
                metrics=self.metrics,
                ledger=self.ledger,
                locator=self.locator,
                dead=self._dead,
                max_age_ms=self._max_age_ms,
                unknown=self._unknown,
            )
            # Not shared: a node's seq and aliases only make sense to a host that sees all its messages.
            filters.extend(self.sparkplug.filters())
        # Lists of messages, one per socket read: never more lists than messages (max_unacked).
        self._inbox: asyncio.Queue[list[Message] | _Wake | None] = asyncio.Queue(maxsize=opts.max_unacked + 2)
        self._wake_on_write = False
        """The processor waits for a free writer: the next finished write puts ``_WAKE`` in the inbox."""
        self._writes: asyncio.Queue[tuple[WriteBatch, list[Message], int, Notes] | None] = asyncio.Queue(
            _WRITE_QUEUE
        )
        concurrency = opts.write_concurrency
        if not concurrency:
            concurrency = 4 if isinstance(settings.sink, InfluxSinkSettings) else 1
        self._write_slots = asyncio.Semaphore(concurrency)
        """Sink writes in flight: live batches and uploaded imports share them (DuckDB: one)."""
        self.consumer = MqttConsumer(
            broker=settings.broker,
            client_id=self.src,
            filters=filters,
            max_unacked=opts.max_unacked,
            max_unacked_bytes=int(opts.max_unacked_mb * 1024 * 1024),
            deliver=self._inbox.put_nowait,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            will=self.sparkplug.will() if self.sparkplug is not None else None,
            on_connected=self.sparkplug.on_connected if self.sparkplug is not None else None,
        )
        if self.sparkplug is not None:
            self.sparkplug.bind(self.consumer.publish, self.consumer.set_will)
        # Gap repair: confirm durably stored batches to their gateways (ingest/repair.py).
        self.confirms = ConfirmOutbox(
            root=self._root,
            ingester=self.src,
            interval_s=opts.confirm_interval_s,
            publish=self.consumer.publish,
            enabled=opts.confirm,
        )
        self._retry_at = 0.0
        self._spooled = asyncio.Event()
        self.metrics.gauges.update(
            {
                "spool_batches": lambda: float(self.spool.depth),
                "spool_bytes": lambda: float(self.spool.bytes),
                "unacked_messages": lambda: float(self.consumer.pending),
                "broker_connected": lambda: float(self.consumer.connected.is_set()),
            }
        )
        self.metrics.ledger = self.ledger.totals
        self.ready = asyncio.Event()
        self.metrics_port: int | None = None
        """The port ``/metrics`` listens on once running (None: not serving)."""

    def refresh_registry(self) -> None:
        """Read parks and gateway sites from the registry file (blocking: run it in a thread)."""
        path = self.settings.ingest.registry_path
        if not path:
            return
        if not os.path.exists(path):
            if self.known_parks is None:
                log.warning(
                    "registry %s does not exist (yet): no parks or gateway positions from it; "
                    "create a park with `parkwatch park create` or check [ingest] registry_path",
                    path,
                )
            self.known_parks = frozenset()
            return
        places = Places(path, read_only=True)
        try:
            parks, sites = places.parks(), places.gateways()
        finally:
            places.close()
        self.known_parks = frozenset(p.id for p in parks)
        self.known_gateways = frozenset((s.park, s.gw) for s in sites)
        self.locator.set_registered(
            {s.gw: (s.lat, s.lon) for s in sites if s.lat is not None and s.lon is not None}
        )

    async def _registry_loop(self) -> None:
        opts = self.settings.ingest
        while True:
            try:
                await asyncio.to_thread(self.refresh_registry)
            except Exception:  # supervised: keep the last parks and positions read
                self.metrics.loop_errors["registry"] += 1
                log.exception(
                    "reading the registry %s failed; keeping what was read before", opts.registry_path
                )
            await asyncio.sleep(opts.registry_refresh_s)

    def _unknown(self, park: str, gw: str) -> str:
        """Why a message of ``park``/``gw`` is refused (empty: it is not)."""
        mode = self.settings.ingest.refuse_unknown
        if mode == "none":
            return ""
        if self.known_parks is None or park not in self.known_parks:
            return (
                f"unknown_park: park {park!r} is not in the registry; create it "
                "(parkwatch park create, PUT /api/v1/parks/{park})"
            )
        if mode == "gateways" and (park, gw) not in self.known_gateways:
            return (
                f"unknown_gateway: gateway {gw!r} is not registered under park {park!r}; register it "
                "(parkwatch gateway set, PUT /api/v1/parks/{park}/gateways/{gw})"
            )
        return ""

    # -- processing (pure but for the ledger and metrics) --

    def _dead(
        self, msg: Message, park: str, gw: str, reason: str, raw: bytes, cls: str, key: str = ""
    ) -> DeadLetter:
        self.metrics.dead_letters[cls] += 1
        self.metrics.dead_letter_reasons[key or cls] += 1
        self.dead_letter_summary.note(key or cls)
        return DeadLetter(
            ts_ns=self._clock(),
            topic=msg.topic[:256],
            park=park,
            gw=gw,
            reason=reason,
            raw=truncate_raw(raw),
            src=self.src,
        )

    def handle(
        self, msg: Message, out: WriteBatch, *, imported: bool = False, notes: Notes | None = None
    ) -> int:
        """Validate and enrich one message into ``out``; return the number of valid readings.

        ``imported``: the message comes from ``parkwatch import`` (its own age limit applies,
        and its readings are always checked against what is already stored).
        ``notes``: where the gateway's batch number goes to be confirmed once ``out`` is durable
        (:meth:`ConfirmOutbox.stored`); None: it is not confirmed.
        """
        if self.sparkplug is not None and msg.topic.startswith(SPARKPLUG_NAMESPACE + "/"):
            self.metrics.messages["sparkplug"] += 1
            return self.sparkplug.handle(msg, out)
        topic = self._topics.get(msg.topic)
        if topic is None:
            topic = self._parse_topic(msg.topic)
        if isinstance(topic, str):
            self.metrics.messages["invalid"] += 1
            out.dead_letters.append(self._dead(msg, "", "", topic, msg.payload, "topic"))
            return 0
        park, gw, channel = topic.park, topic.gateway, topic.channel
        self.metrics.messages[channel] += 1
        if self._refuse_unknown:
            unknown = self._unknown(park, gw)
            if unknown:
                key = unknown.partition(":")[0]
                out.dead_letters.append(self._dead(msg, park, gw, unknown, msg.payload, key))
                return 0
        if msg.oversize_bytes:
            reason = (
                f"payload of {msg.oversize_bytes} bytes exceeds the contract's limit of "
                f"{MAX_PAYLOAD_BYTES} bytes; publish smaller batches"
            )
            out.dead_letters.append(self._dead(msg, park, gw, reason, msg.payload, "oversize"))
            return 0
        if channel != "telemetry":
            return self._not_telemetry(msg, out, topic)
        try:
            decoded = decode_batch(
                msg.payload,
                content_type=msg.content_type,
                now_ms=msg.received_ms,
                max_age_ms=self._import_max_age_ms if imported else self._max_age_ms,
            )
        except ContractError as exc:
            out.dead_letters.append(self._dead(msg, park, gw, exc.reason, msg.payload, "payload"))
            return 0
        if decoded.gw != gw:
            reason = (
                f"payload gateway {decoded.gw!r} does not match the topic's gateway {gw!r}: "
                "a gateway may publish only as itself"
            )
            out.dead_letters.append(self._dead(msg, park, gw, reason, msg.payload, "gateway_mismatch"))
            return 0
        outcome: Outcome = "first"
        if not imported:  # an import is no gateway: it has no loss ledger and gets no confirms
            outcome = self.ledger.observe(park, gw, decoded.seq)
            if notes is not None:
                self.confirms.received(notes, park, gw, decoded.seq)
        if decoded.rejected:
            for rej in decoded.rejected:
                cls = "field" if rej.dropped else "reading"
                if rej.dropped:
                    self.dropped_fields[rej.key] += 1
                out.dead_letters.append(self._dead(msg, park, gw, rej.reason, rej.raw, cls, rej.key))
        readings = decoded.readings
        if not readings:
            return 0
        if self._renames:
            readings = self.operators.apply(readings)
        out.parts.append(
            Part(
                park=park,
                gw=gw,
                readings=readings,
                h3=self.locator.cells(gw, readings),
                sent_ms=decoded.sent or 0,
                replay=imported or msg.dup or outcome in ("duplicate", "late"),
            )
        )
        return len(readings)

    def _not_telemetry(self, msg: Message, out: WriteBatch, topic: Topic) -> int:
        """A status message into ``out``, or the dead letter of a channel the ingester does not take."""
        park, gw = topic.park, topic.gateway
        if topic.channel == "status":
            try:
                status = decode_message(msg.payload, Status, content_type=msg.content_type)
            except ContractError as exc:
                out.dead_letters.append(
                    self._dead(msg, park, gw, f"status: {exc.reason}", msg.payload, "status")
                )
                return 0
            if status.gw != gw:
                reason = f"status gateway {status.gw!r} does not match the topic's gateway {gw!r}"
                out.dead_letters.append(self._dead(msg, park, gw, reason, msg.payload, "gateway_mismatch"))
                return 0
            out.statuses.append(
                StatusRow(ts_ms=status.ts or msg.received_ms, park=park, gw=gw, status=status)
            )
            return 0
        reason = f"the ingester does not take {topic.direction}/{topic.channel} messages"
        out.dead_letters.append(self._dead(msg, park, gw, reason, msg.payload, "topic"))
        return 0

    def _parse_topic(self, name: str) -> Topic | str:
        """Parse a topic name, or say why it is refused; both are cached per name (a fleet has a
        bounded set of topics, and a sender of a bad topic usually repeats it)."""
        parsed: Topic | str
        try:
            parsed = parse_topic(name, root=self._root)
        except TopicError as exc:
            parsed = exc.reason
        if len(self._topics) >= _TOPIC_CACHE_MAX:
            self._topics.clear()
        self._topics[name] = parsed
        return parsed

    def _take(self, messages: list[Message], start: int, pending: _Pending) -> int:
        """Handle ``messages[start:]`` into ``pending`` until it holds ``batch_readings``; return
        the index after the last message taken (``len(messages)``: all of them)."""
        limit = self.settings.ingest.batch_readings
        handle = self.handle
        batch = pending.batch
        notes = pending.notes
        taken = pending.messages
        if not taken:
            pending.started = time.monotonic()
        readings = pending.readings
        size = 0
        end = len(messages)
        i = start
        while i < end:
            msg = messages[i]
            i += 1
            taken.append(msg)
            size += msg.size
            try:
                readings += handle(msg, batch, notes=notes)
            except Exception as exc:  # supervised: one bad message must not stop the intake
                self.metrics.loop_errors["process"] += 1
                log.exception("processing a message on %s failed; dead-lettered", msg.topic[:200])
                batch.dead_letters.append(
                    self._dead(msg, "", "", f"internal error: {exc!r}"[:300], msg.payload, "internal")
                )
            # Decoded (or dead-lettered with its raw bytes): until its ack it needs no payload.
            msg.payload = b""
            if readings >= limit:
                break
        pending.readings = readings
        pending.size += size
        return i

    async def _flush(self, pending: _Pending) -> _Pending:
        self.dead_letter_summary.tick(time.monotonic())
        if pending.messages:
            pending.batch.ledger.extend(self.ledger.drain(int(time.time() * 1000)))
            await self._writes.put((pending.batch, pending.messages, pending.size, pending.notes))
        return _Pending()

    def _writer_free(self) -> bool:
        """Whether a batch flushed now would be written at once (a write slot free, none queued)."""
        return self._writes.empty() and not self._write_slots.locked()

    async def _process_loop(self) -> None:
        """Validate messages into a batch; hand it to the writer when it is worth writing.

        A batch is flushed when it holds ``batch_readings``; when flow control stopped the
        intake (nothing more can arrive before acks free room); or when its first message is
        ``flush_interval_s`` old *and* a writer is free. While every writer is busy the batch
        keeps filling instead: the store takes big writes for much less than many small ones, so
        under load batches grow with the load, and when idle a message waits at most the interval.
        """
        opts = self.settings.ingest
        pending = _Pending()
        inbox = self._inbox
        since_yield = 0
        while True:
            if inbox.empty():
                if pending.messages and (
                    self.consumer.intake_full
                    or (time.monotonic() - pending.started >= opts.flush_interval_s and self._writer_free())
                ):
                    pending = await self._flush(pending)
                    continue
                if not pending.messages:
                    item = await inbox.get()
                else:
                    remaining = opts.flush_interval_s - (time.monotonic() - pending.started)
                    if remaining <= 0:
                        # Due, but every writer is busy: wait for a message or a finished write.
                        self._wake_on_write = True
                        item = await inbox.get()
                    else:
                        try:
                            async with asyncio.timeout(remaining):
                                item = await inbox.get()
                        except TimeoutError:
                            continue
            else:
                item = inbox.get_nowait()
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)  # let the MQTT reader and the writers' acks run
            if item is _WAKE:
                continue
            if item is None:
                await self._flush(pending)
                await self._writes.put(None)
                return
            assert isinstance(item, list)
            since_yield += len(item)
            taken = self._take(item, 0, pending)
            while pending.readings >= opts.batch_readings:
                pending = await self._flush(pending)
                if taken < len(item):
                    taken = self._take(item, taken, pending)
            if pending.messages and (
                time.monotonic() - pending.started >= opts.flush_interval_s and self._writer_free()
            ):
                pending = await self._flush(pending)

    # -- writing --

    def _written(self, batch: WriteBatch, result: WriteResult, started: float) -> None:
        now = time.monotonic()
        self.metrics.write_latency.observe(now - started)
        self.metrics.readings_stored += result.readings
        self.metrics.batches_written += 1
        for _ in result.rejected:
            self.metrics.dead_letters["sink_refused"] += 1
        self.metrics.e2e_latency.observe_since_ms(time.time() * 1000, [part.sent_ms for part in batch.parts])

    async def _spool(self, batch: WriteBatch) -> None:
        attempt = 0
        while True:
            try:
                await asyncio.to_thread(self.spool.put, batch)
            except SpoolFull:
                if attempt == 0:
                    log.warning(
                        "spool full (%d batches): pausing intake until the sink catches up", self.spool.depth
                    )
                await asyncio.sleep(self._delay(attempt))
                attempt += 1
                continue
            self.metrics.batches_spooled += 1
            self._spooled.set()
            return

    async def _store(self, batch: WriteBatch) -> WriteResult:
        """Write with poison isolation; raise ``RetryableError`` when the sink is unavailable."""
        iso = await write_isolating(self.sink, batch, src=self.src, clock=self._clock)
        if iso.writes > 1:
            self.metrics.sink_errors["refused"] += 1
            log.warning(
                "the sink refused a batch for its content: %d row(s) dead-lettered (%s), the rest "
                "stored, in %d writes",
                len(iso.poison),
                "; ".join(d.reason for d in iso.poison[:3])[:500],
                iso.writes,
            )
        if iso.lost:
            self.metrics.dead_letters["lost"] += len(iso.lost)
            log.error("the sink refused %d row(s) and their dead letters: %s", len(iso.lost), iso.lost[:3])
        return WriteResult(readings=iso.result.readings, rejected=[*iso.result.rejected, *iso.poison])

    async def write_direct(self, batch: WriteBatch) -> WriteResult:
        """Write a batch built by :meth:`handle` straight to the sink (``parkwatch import``).

        The same poison isolation as live batches; an unavailable sink raises
        ``RetryableError`` (an import is re-run, not spooled).
        """
        async with self._write_slots:
            started = time.monotonic()
            result = await self._store(batch)
        self._written(batch, result, started)
        return result

    def _failed_again(self, tries: int, why: str) -> None:
        if tries >= DEGRADED_AFTER:
            self.metrics.degraded = f"the sink failed {tries} times in a row on the same batch: {why}"[:500]

    def _sink_down(self, exc: RetryableError, attempt: int) -> None:
        wait = exc.retry_after_s if exc.retry_after_s is not None else self._delay(attempt)
        self._retry_at = time.monotonic() + wait
        log.warning("sink unavailable (%s); spooling, next try in %.1fs", exc, wait)

    async def _write_one(self, batch: WriteBatch, messages: list[Message], size: int, notes: Notes) -> None:
        if time.monotonic() >= self._retry_at:
            started = time.monotonic()
            try:
                result = await self._store(batch)
            except RetryableError as exc:
                self.metrics.sink_errors["unavailable"] += 1
                self._sink_down(exc, 0)
            except Exception:  # supervised: a sink bug must not lose the batch
                self.metrics.sink_errors["unexpected"] += 1
                self.metrics.loop_errors["write"] += 1
                log.exception("sink write failed unexpectedly; spooling the batch")
                self._retry_at = time.monotonic() + self._delay(0)
            else:
                self._written(batch, result, started)
                self.confirms.stored(notes)
                self.consumer.ack(messages, size)
                return
        await self._spool(batch)
        self.confirms.stored(notes)
        self.consumer.ack(messages, size)

    async def _write_loop(self) -> None:
        slots = self._write_slots

        async def guarded(batch: WriteBatch, messages: list[Message], size: int, notes: Notes) -> None:
            try:
                await self._write_one(batch, messages, size, notes)
            finally:
                slots.release()
                if self._wake_on_write:
                    # The processor holds a due batch for a free writer: this one is free now.
                    self._wake_on_write = False
                    with contextlib.suppress(asyncio.QueueFull):  # a full inbox wakes it anyway
                        self._inbox.put_nowait(_WAKE)

        async with asyncio.TaskGroup() as tg:
            while True:
                item = await self._writes.get()
                if item is None:
                    return
                await slots.acquire()
                tg.create_task(guarded(*item), name="write-batch")

    async def _replay_loop(self) -> None:
        attempt = 0
        while True:
            await self._spooled.wait()
            while self.spool.depth:
                wait = self._retry_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    taken = await asyncio.to_thread(self.spool.begin)
                except SpoolCorrupt as exc:
                    self.metrics.loop_errors["spool"] += 1
                    log.error("%s", exc)
                    continue
                if taken is None:
                    break
                tx, batch = taken
                # A crash between a write and its spool commit replays the batch: deduplicate it.
                batch.parts = [msgspec.structs.replace(p, replay=True) for p in batch.parts]
                started = time.monotonic()
                try:
                    result = await self._store(batch)
                except RetryableError as exc:
                    attempt += 1
                    self.metrics.sink_errors["unavailable"] += 1
                    self._failed_again(attempt, f"sink unavailable: {exc}")
                    self._sink_down(exc, attempt)
                    continue
                except Exception as exc:  # supervised: keep the batch spooled and retry later
                    self.metrics.sink_errors["unexpected"] += 1
                    self.metrics.loop_errors["replay"] += 1
                    log.exception("replaying a spooled batch failed unexpectedly")
                    attempt += 1
                    self._failed_again(attempt, f"unexpected sink error: {exc!r}")
                    self._retry_at = time.monotonic() + self._delay(attempt)
                    continue
                await asyncio.to_thread(self.spool.commit, tx)
                if attempt:
                    log.info("sink is back; replaying %d spooled batch(es)", self.spool.depth)
                attempt = 0
                self.metrics.degraded = ""
                self._retry_at = 0.0
                self._written(batch, result, started)
                self.metrics.batches_replayed += 1
            self._spooled.clear()

    # -- lifecycle --

    async def _start_sink(self, stop: asyncio.Event) -> bool:
        attempt = 0
        while not stop.is_set():
            try:
                self.ledger.load(await self.sink.start())
                return True
            except RetryableError as exc:
                wait = exc.retry_after_s if exc.retry_after_s is not None else self._delay(attempt)
                log.warning("sink not ready (%s); retrying in %.1fs", exc, wait)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await stop.wait()
        return False

    async def _serve_metrics(self) -> asyncio.Server:
        """Start ``/metrics`` and ``/healthz``; log the port, and write it to ``metrics_port_file``.

        Raises:
            ConfigError: the configured port cannot be listened on (taken, or not allowed).
        """
        opts = self.settings.ingest
        try:
            server = await serve_metrics(self.metrics, opts.metrics_host, opts.metrics_port)
        except OSError as exc:
            raise ConfigError(
                f"[ingest] metrics_port: cannot listen on {opts.metrics_host}:{opts.metrics_port}"
                f" ({exc.strerror or exc}); set a free port, or metrics_port = 0 for any free port"
            ) from exc
        self.metrics_port = server.sockets[0].getsockname()[1]
        log.info(
            "metrics and health on http://%s:%d/metrics and /healthz",
            opts.metrics_host,
            self.metrics_port,
            extra={"metrics_port": self.metrics_port},
        )
        if opts.metrics_port_file:
            write_port_file(Path(opts.metrics_port_file), self.metrics_port)
        return server

    def _stop_metrics(self, server: asyncio.Server) -> None:
        server.close()
        # A port file left behind would point the next reader at a port nobody listens on.
        if self.settings.ingest.metrics_port_file:
            Path(self.settings.ingest.metrics_port_file).unlink(missing_ok=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully."""
        opts = self.settings.ingest
        server = None
        try:
            if not await self._start_sink(stop):
                return
            if self.spool.depth:
                log.info("resuming with %d spooled batch(es)", self.spool.depth)
                self._spooled.set()
            if opts.metrics_enabled:
                server = await self._serve_metrics()
            if opts.registry_path:
                await asyncio.to_thread(self.refresh_registry)
            async with asyncio.TaskGroup() as tg:
                mqtt_task = tg.create_task(self.consumer.run(), name="mqtt")
                process = tg.create_task(self._process_loop(), name="process")
                write = tg.create_task(self._write_loop(), name="write")
                replay = tg.create_task(self._replay_loop(), name="replay")
                confirm = tg.create_task(self.confirms.run(), name="confirm")
                tasks = [mqtt_task, process, write, replay, confirm]
                if opts.registry_path:
                    tasks.append(tg.create_task(self._registry_loop(), name="registry"))
                    if opts.import_poll_s:
                        tasks.append(tg.create_task(run_uploaded_imports(self), name="imports"))
                # Ready once the broker acknowledged the subscription: before it, a message
                # published on a first start (no session yet) would go to nobody.
                await _first_of(self.consumer.subscribed, stop)
                if self.consumer.subscribed.is_set():
                    self.ready.set()
                await stop.wait()
                log.info("stopping: intake paused, flushing")
                self.consumer.pause_intake()
                self._inbox.put_nowait(None)
                try:
                    async with asyncio.timeout(opts.shutdown_grace_s):
                        await process
                        await write
                except TimeoutError:
                    log.warning("shutdown grace expired; unacknowledged messages will be redelivered")
                self.confirms.flush()
                if self.sparkplug is not None:
                    self.sparkplug.publish_offline()
                await self.consumer.disconnect()
                for task in tasks:
                    task.cancel()
        finally:
            if server is not None:
                self._stop_metrics(server)
            await self.sink.aclose()
            log.info("stopped: %d readings stored", self.metrics.readings_stored)


async def run_uploaded_imports(ing: Ingester) -> None:
    """Run the survey files uploaded through the API (``POST /api/v1/imports``), one at a time."""
    from ingest.import_worker import ImportWorker  # the survey parsers load only when used

    await ImportWorker(ing).run()


def _host_id(client_id: str) -> str:
    """A Sparkplug host id from an MQTT client id (one topic segment)."""
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in client_id)[:64] or "parkwatch"


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
