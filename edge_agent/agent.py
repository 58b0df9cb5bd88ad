"""The edge agent service: collectors -> disk buffer -> MQTT, one ``asyncio.TaskGroup``.

Loops (each a named task):

``collectors``  one supervised task per device, except Modbus TCP devices: one task per poll
                interval reads all of them on each tick (:mod:`edge_agent.collectors.modbus_tick`);
                a device's failure is logged, counted and retried with capped, jittered
                backoff and never stops the others.
``writer``      drains the bounded intake list into the disk buffer every 0.2 s at most, on a
                tick of the fastest collectors, so it wakes with them (readings are durable
                before anything is published). The buffer's operations run on the event loop
                (:mod:`edge_agent.buffer`: small transactions that never wait for the disk);
                its WAL checkpoints, which do, run on the ``edge-buffer`` worker thread.
``sealer``      turns staged readings into sequence-numbered batches (by size and by time).
``forwarder``   publishes batches, at most ``batch.max_inflight`` at a time; after its PUBACK a
                batch is kept, marked published, until an ingester confirms it (or deleted at
                once with ``buffer.hold_until_confirmed = false``). Batches sealed since the current connection came up
                ("live") go first; older ones ("backlog") are replayed oldest first, paced at
                ``batch.replay_batches_per_s``.
``status``      the retained ``online`` status, periodically and on events.
``downlink``    remote config and commands from ``down/config`` and ``down/command``.
``repair``      confirms from ``down/confirm``: forget confirmed batches, resend the ones that
                stay unconfirmed, expire the too old (:mod:`edge_agent.confirm`).
``mqtt``        the :class:`~edge_agent.publisher.Publisher` connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, ParamSpec, TypeVar

import msgspec

from contract.codec import decode_message
from contract.messages import Command, Status, Uplink
from contract.readings import Broadband, Cellular, Reading, Wifi
from edge_agent import remote_config
from edge_agent.backlog_log import BacklogLog
from edge_agent.buffer import DiskBuffer, Tx
from edge_agent.collectors import Collector, TickGroup, build_collectors, tick_groups
from edge_agent.confirm import GapRepair
from edge_agent.errors import DeviceError, NotConnectedError, PermanentError
from edge_agent.publisher import DownChannel, Publisher
from edge_agent.remote_config import config_hash
from edge_agent.ticks import Ticks, next_tick
from mqttlink import Backoff, jittered_backoff
from settings.edge import EdgeSettings
from settings.errors import ConfigError

log = logging.getLogger(__name__)

_PLACED_KINDS: Final = (Cellular, Wifi, Broadband)
"""Kinds binned on the coverage and broadband maps: they take the gateway's fixed position."""


def with_fixed_position(r: Reading, lat: float | None, lon: float | None) -> Reading:
    """A network reading without a position of its own, from a gateway with a fixed one
    (``[agent] lat/lon``), gets that position; every other reading is returned as it is."""
    if lat is None or lon is None or r.lat is not None or not isinstance(r, _PLACED_KINDS):
        return r
    return msgspec.structs.replace(r, lat=lat, lon=lon)


P = ParamSpec("P")
R = TypeVar("R")

_INTAKE_MAX: Final = 10_000
_DOWNLINK_MAX: Final = 16
_WRITE_COALESCE_S: Final = 0.2
"""Readings reach the disk buffer at most this long after they were read."""
_CHECKPOINT_S: Final = 10.0
"""How often the disk buffer's WAL is folded into its file (at 200 readings/s about 2 MB of WAL)."""


@dataclass
class AgentCounters:
    """Counters reported in logs, the doctor and the benchmark."""

    readings: int = 0
    batches_acked: int = 0
    batches_rejected: int = 0
    device_errors: int = 0
    loop_errors: int = 0
    configs_applied: int = 0
    configs_rejected: int = 0
    commands: int = 0
    failing: dict[str, str] = field(default_factory=dict)
    """device id -> last error, while it fails."""


class Agent:
    """One gateway's agent.

    Args:
        settings: the effective settings.
        file_config: the settings file as a plain table; a remote config is merged over it.
        version: agent version reported in the status.
        device_backoff: delay before retry n of a failing device (default 1 s doubling to 60 s).
        mqtt_backoff: reconnect delays (default from ``[broker]``).
    """

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        file_config: dict[str, Any] | None = None,
        version: str = "0",
        device_backoff: Backoff | None = None,
        mqtt_backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.file_config = file_config if file_config is not None else msgspec.to_builtins(settings)
        self.version = version
        self.config_hash = config_hash(settings)
        self.config_error: str | None = None
        self.counters = AgentCounters()
        self._device_backoff = device_backoff or jittered_backoff(1.0, 60.0)
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-buffer")
        self.buffer = DiskBuffer(
            settings.buffer_path,
            gateway=settings.agent.gateway,
            max_readings=settings.buffer.max_readings,
            max_bytes=int(settings.buffer.max_mb * 1024 * 1024),
            autocheckpoint=False,
        )
        self._checkpoint_at = 0.0
        self.publisher = Publisher(
            settings.broker,
            park=settings.agent.park,
            gateway=settings.agent.gateway,
            client_id=settings.client_id,
            session_expiry_s=settings.agent.session_expiry_s,
            max_inflight=max(20, settings.batch.max_inflight * 2),
            backoff=mqtt_backoff,
            birth=self.status,
            on_down=self._on_down,
        )
        self.repair = GapRepair(
            self.buffer,
            gateway=settings.agent.gateway,
            grace_s=settings.buffer.confirm_grace_s,
            retention_s=settings.buffer.confirm_retention_s,
            wake=self._sealed_set,
        )
        self.collectors: list[Collector] = []
        # Encoded readings waiting for the writer: a list, not a queue, as the writer takes them
        # all at once; bounded by _stage waiting for _intake_room.
        self._intake: list[bytes] = []
        self._intake_ready = asyncio.Event()
        self._intake_room = asyncio.Event()
        self._intake_room.set()
        self._writer_stop = False
        self._tick_s: float | None = None
        self._downlink: asyncio.Queue[tuple[DownChannel, bytes]] = asyncio.Queue(maxsize=_DOWNLINK_MAX)
        self._restart = asyncio.Event()
        self._seal_now = asyncio.Event()
        self._sealed = asyncio.Event()
        self._status_now = asyncio.Event()
        self._acked = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._hold = settings.buffer.hold_until_confirmed
        self._boundary = 0
        self._drop_logged = -60.0
        self._backlog_log = BacklogLog()
        self._encoder = msgspec.json.Encoder()
        self._ticks = Ticks()

    @property
    def restart_requested(self) -> bool:
        """Whether the collectors are about to be rebuilt (after a remote config or a command)."""
        return self._restart.is_set()

    # ------------------------------------------------------------------ helpers

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        # On the event loop: a buffer operation never waits for the disk (checkpoints excepted,
        # see _checkpoint), and a hand-off to a thread costs two thread wake-ups.
        return fn(*args, **kwargs)

    async def _checkpoint(self) -> None:
        """Fold the buffer's WAL into its file every ``_CHECKPOINT_S``, on the worker thread."""
        now = time.monotonic()
        if now - self._checkpoint_at < _CHECKPOINT_S:
            return
        self._checkpoint_at = now
        await asyncio.get_running_loop().run_in_executor(self._db_pool, self.buffer.checkpoint)

    def _sealed_set(self) -> None:
        self._sealed.set()

    def status(self) -> Status:
        """The current ``online`` status."""
        st = self.buffer.stats()
        uplink: Uplink | None = None
        for c in self.collectors:
            last = getattr(c, "last", None)
            if isinstance(last, Cellular) and getattr(getattr(c, "cfg", None), "uplink", False):
                uplink = Uplink(
                    operator=last.operator, tech=last.tech, rsrp_dbm=last.rsrp_dbm, sinr_db=last.sinr_db
                )
        return Status(
            v=1,
            gw=self.settings.agent.gateway,
            state="online",
            ts=int(time.time() * 1000),
            agent_version=self.version,
            config_hash=self.config_hash,
            backlog=st.backlog,
            dropped=st.dropped,
            buffer_pct=st.fill_pct,
            uplink=uplink,
            config_error=self.config_error[:1024] if self.config_error else None,
            unconfirmed=st.unconfirmed if self._hold else None,
            expired=st.expired if self._hold or st.expired else None,
        )

    def _on_down(self, channel: DownChannel, payload: bytes) -> None:
        if channel == "confirm":
            self.repair.offer(payload)
            return
        try:
            self._downlink.put_nowait((channel, payload))
        except asyncio.QueueFull:
            log.warning("down-link queue full: %s message dropped", channel)

    # ------------------------------------------------------------------ service

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully (drain, flush, disconnect)."""
        try:
            async with asyncio.TaskGroup() as tg:
                mqtt = tg.create_task(self.publisher.run(), name="mqtt")
                collectors = tg.create_task(self._collectors_loop(), name="collectors")
                writer = tg.create_task(self._writer_loop(), name="writer")
                others = [
                    tg.create_task(self._sealer_loop(), name="sealer"),
                    tg.create_task(self._forwarder_loop(), name="forwarder"),
                    tg.create_task(self._status_loop(), name="status"),
                    tg.create_task(self._downlink_loop(), name="downlink"),
                    tg.create_task(self.repair.run(), name="repair"),
                ]
                await stop.wait()
                log.info("edge agent stopping")
                collectors.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collectors
                self._writer_stop = True
                self._intake_ready.set()
                await writer
                await self._db(self.buffer.seal, max_readings=self.settings.batch.max_readings)
                self._sealed.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.agent.shutdown_grace_s):
                        while self.publisher.connected and (self.buffer.stats().to_send or self._inflight):
                            self._acked.clear()
                            await self._acked.wait()
                for t in others:
                    t.cancel()
                for t in list(self._inflight.values()):
                    t.cancel()
                await self.publisher.aclose()
                mqtt.cancel()
        finally:
            for c in self.collectors:
                await c.aclose()
            self._db_pool.shutdown(wait=True)
            self.buffer.close()
            log.info("edge agent stopped")

    # ------------------------------------------------------------------ collectors

    async def _collectors_loop(self) -> None:
        while True:
            self._restart.clear()
            self.collectors = build_collectors(self.settings.collectors)
            groups, singles = tick_groups(self.settings.collectors, self.collectors)
            intervals = [g.interval_s for g in groups] + [c.interval_s for c in singles]
            fastest = min(intervals, default=None)
            self._tick_s = fastest if fastest is not None and fastest <= _WRITE_COALESCE_S else None
            tasks = [asyncio.create_task(self._poll(c), name=f"collector-{c.device}") for c in singles]
            tasks += [
                asyncio.create_task(self._poll_group(g), name=f"collectors-every-{g.interval_s:g}s")
                for g in groups
            ]
            try:
                await self._restart.wait()
                log.info("restarting %d collectors", len(self.collectors))
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for g in groups:
                    await g.aclose()
                for c in self.collectors:
                    await c.aclose()
                self.counters.failing.clear()

    async def _poll(self, c: Collector) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        tick = 0
        while True:
            try:
                readings: list[Reading] = await c.read()
            except DeviceError as exc:
                attempt += 1
                self.counters.device_errors += 1
                if self.counters.failing.get(c.device) != str(exc):
                    log.warning("device %s failed (retrying with backoff): %s", c.device, exc)
                self.counters.failing[c.device] = str(exc)
                await asyncio.sleep(self._device_backoff(attempt))
                continue
            except Exception as exc:
                # Top of a supervised loop: a collector bug must not stop the other devices.
                attempt += 1
                self.counters.loop_errors += 1
                self.counters.failing[c.device] = f"{type(exc).__name__}: {exc}"
                log.exception("collector %s crashed; restarting it with backoff", c.device)
                await asyncio.sleep(self._device_backoff(attempt))
                continue
            if attempt:
                log.info("device %s is answering again", c.device)
            attempt = 0
            self.counters.failing.pop(c.device, None)
            await self._stage(readings)
            tick, next_t = next_tick(loop.time(), c.interval_s, after=tick)
            await self._ticks.sleep_until(next_t)

    async def _stage(self, readings: list[Reading]) -> None:
        """Encode readings into the intake list (waiting only while it is full)."""
        lat, lon = self.settings.agent.lat, self.settings.agent.lon
        encode = self._encoder.encode
        self._intake += [encode(with_fixed_position(r, lat, lon)) for r in readings]
        self.counters.readings += len(readings)
        self._intake_ready.set()
        if len(self._intake) >= _INTAKE_MAX:
            self._intake_room.clear()
            await self._intake_room.wait()

    async def _poll_group(self, group: TickGroup) -> None:
        """:meth:`_poll` for a tick group: one read of all its devices per tick, each device with
        its own error handling and backoff (a failing device is left out until its retry is due)."""
        loop = asyncio.get_running_loop()
        interval_s = group.interval_s
        attempts: dict[str, int] = {}
        retry_at: dict[str, float] = {}
        # The first read is now; each read may wait for its answers until the next tick.
        tick, until_s = next_tick(loop.time(), interval_s)
        while True:
            due: set[str] | None = None
            if retry_at:
                now = loop.time()
                due = {d for d in group.devices if retry_at.get(d, 0.0) <= now}
            readings: list[Reading] = []
            for poll in await group.read(due, until_s=until_s):
                device = poll.device
                try:
                    readings += poll.readings()
                except DeviceError as exc:
                    self.counters.device_errors += 1
                    if self.counters.failing.get(device) != str(exc):
                        log.warning("device %s failed (retrying with backoff): %s", device, exc)
                    self.counters.failing[device] = str(exc)
                except Exception as exc:
                    # Top of a supervised loop: a collector bug must not stop the other devices.
                    self.counters.loop_errors += 1
                    self.counters.failing[device] = f"{type(exc).__name__}: {exc}"
                    log.exception("collector %s crashed; restarting it with backoff", device)
                else:
                    if attempts.pop(device, 0):
                        del retry_at[device]
                        log.info("device %s is answering again", device)
                        self.counters.failing.pop(device, None)
                    continue
                attempt = attempts[device] = attempts.get(device, 0) + 1
                retry_at[device] = loop.time() + self._device_backoff(attempt)
            if readings:
                await self._stage(readings)
            if loop.time() >= until_s + interval_s:
                # Overran a whole interval: skip the missed ticks rather than read in a burst.
                tick, until_s = next_tick(loop.time(), interval_s, after=tick)
            await self._ticks.sleep_until(until_s)
            tick += 1
            until_s = tick * interval_s

    # ------------------------------------------------------------------ buffer and forwarding

    async def _writer_loop(self) -> None:
        # Coalescing for up to 0.2 s turns hundreds of readings a second into a few SQLite
        # transactions.
        while True:
            await self._intake_ready.wait()
            if not self._writer_stop:
                await self._coalesce()
            self._intake_ready.clear()
            bodies, self._intake = self._intake, []
            self._intake_room.set()
            if bodies:
                dropped = await self._db(self.buffer.put, bodies)
                if dropped and time.monotonic() - self._drop_logged >= 60.0:
                    self._drop_logged = time.monotonic()
                    log.warning(
                        "disk buffer full: dropping the oldest readings (%d so far; raise [buffer] "
                        "max_readings/max_mb or fix the uplink)",
                        self.buffer.stats().dropped,
                    )
                if self.buffer.stats().staged >= self.settings.batch.max_readings:
                    self._seal_now.set()
            await self._checkpoint()
            if self._writer_stop and not self._intake:
                return

    async def _coalesce(self) -> None:
        """Wait up to ``_WRITE_COALESCE_S``: until the last tick of the fastest collectors within
        it, when they read at least that often (one wake-up for both), else the whole time."""
        tick_s = self._tick_s
        if tick_s is None:
            await asyncio.sleep(_WRITE_COALESCE_S)
            return
        now = asyncio.get_running_loop().time()
        # k * tick_s: the very float the collectors' ticks use, so Ticks shares their timer.
        when = math.floor((now + _WRITE_COALESCE_S) / tick_s) * tick_s
        if when > now:
            await self._ticks.sleep_until(when)

    async def _sealer_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.batch.max_interval_s):
                    await self._seal_now.wait()
            self._seal_now.clear()
            if await self._db(self.buffer.seal, max_readings=self.settings.batch.max_readings):
                self._sealed.set()
            self._say_backlog()

    def _say_backlog(self) -> None:
        """Log buffering, replay and drained lines (see :mod:`edge_agent.backlog_log`)."""
        st = self.buffer.stats()
        said = self._backlog_log.observe(
            now_s=time.monotonic(),
            connected=self.publisher.connected,
            # The backlog is what still waits to be published; batches kept for an ingester's
            # confirm (gap repair) were delivered and do not count.
            batches=st.to_send,
            readings=st.batched - st.unconfirmed,
            fill_pct=st.fill_pct,
        )
        if said:
            log.info("%s", said)

    def _next_tx(self, last_replay: float) -> tuple[Tx | None, bool]:
        """The next batch to send (live first, then paced backlog), and whether backlog waits."""
        exclude = tuple(self._inflight)
        tx = self.buffer.begin(min_seq=self._boundary, exclude=exclude)
        if tx is not None:
            return tx, False
        backlog = self.buffer.begin(max_seq=self._boundary, exclude=exclude)
        if (
            backlog is not None
            and time.monotonic() - last_replay >= 1.0 / self.settings.batch.replay_batches_per_s
        ):
            return backlog, False
        return None, backlog is not None

    async def _forwarder_loop(self) -> None:
        last_replay = 0.0
        connects = -1
        while True:
            await self.publisher.wait_connected()
            if self.publisher.connects != connects:
                connects = self.publisher.connects
                # Everything sealed before this connection is backlog; newer batches are live.
                self._boundary = self.buffer.stats().next_seq
                self._say_backlog()
            if len(self._inflight) >= self.settings.batch.max_inflight:
                await asyncio.wait(list(self._inflight.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            self._sealed.clear()
            if self.buffer.stats().to_send <= len(self._inflight):
                # Every batch waiting is in flight already (the counters are the buffer's own,
                # in memory): wait for a new batch or an acknowledgement without asking the disk.
                await self._sealed.wait()
                continue
            tx, backlog_waits = await self._db(self._next_tx, last_replay)
            if tx is None:
                # Wake on a new batch or an acknowledgement; while backlog waits, also at its pace.
                pace = 1.0 / self.settings.batch.replay_batches_per_s if backlog_waits else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pace):
                        await self._sealed.wait()
                continue
            if tx.seq < self._boundary:
                last_replay = time.monotonic()
            self._inflight[tx.seq] = asyncio.create_task(self._send(tx), name=f"send-{tx.seq}")

    async def _send(self, tx: Tx) -> None:
        try:
            await self.publisher.publish_batch(tx.payload)
        except PermanentError as exc:
            # The broker refused it (e.g. ACL): retrying forever would block the buffer.
            self.counters.batches_rejected += 1
            log.error("batch seq %d (%d readings) refused and dropped: %s", tx.seq, tx.readings, exc)
            refused = True
        except NotConnectedError:
            self._inflight.pop(tx.seq, None)
            return
        else:
            refused = False
        try:
            if self._hold and not refused:
                await self._db(self.buffer.mark_published, tx, now_ms=int(time.time() * 1000))
            else:
                await self._db(self.buffer.commit, tx)
            self.counters.batches_acked += 1
        finally:
            self._inflight.pop(tx.seq, None)
            self._sealed.set()
            self._acked.set()

    # ------------------------------------------------------------------ status and down-link

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.agent.status_interval_s):
                    await self._status_now.wait()
            self._status_now.clear()
            if not self.publisher.connected:
                continue
            try:
                async with asyncio.timeout(30):
                    await self.publisher.publish_status(self.status())
            except (TimeoutError, NotConnectedError, PermanentError) as exc:
                log.warning("status not published: %s", exc)

    async def _downlink_loop(self) -> None:
        while True:
            channel, payload = await self._downlink.get()
            if not payload:
                continue  # a retained message being cleared
            try:
                if channel == "config":
                    self.apply_remote_config(payload)
                else:
                    await self._command(decode_message(payload, Command))
            except Exception:
                # Top of a supervised loop: a bad down-link message must not stop the agent.
                self.counters.loop_errors += 1
                log.exception("down-link %s message failed", channel)
            self._status_now.set()

    async def _command(self, cmd: Command) -> None:
        log.info("command %s (id %s)", cmd.cmd, cmd.id)
        self.counters.commands += 1
        if cmd.cmd == "flush":
            self._seal_now.set()
        elif cmd.cmd == "restart_collectors":
            self._restart.set()

    def apply_remote_config(self, payload: bytes) -> bool:
        """Validate a ``down/config`` document and apply it live; return whether it was applied.

        See :mod:`edge_agent.remote_config` for the rules; the outcome shows in the status
        (``config_hash`` or ``config_error``).
        """
        try:
            new = remote_config.evaluate(payload, file_config=self.file_config, current=self.settings)
        except ConfigError as exc:
            self.config_error = str(exc)
            self.counters.configs_rejected += 1
            log.warning("remote config rejected: %s", exc)
            return False
        new_hash = config_hash(new)
        self.config_error = None
        if new_hash == self.config_hash:
            return True
        self.settings = new
        self.config_hash = new_hash
        self.counters.configs_applied += 1
        logging.getLogger().setLevel(new.logging.level)
        self._restart.set()
        log.info("remote config %s applied (%d collector tables)", new_hash, len(new.collectors))
        return True
