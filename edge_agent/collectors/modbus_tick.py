"""Modbus TCP devices of one poll interval, read by one task per tick.

With one task per device, every poll of every device costs the event loop two task steps (the
tick wakes the task, which sends its request and waits; the answer wakes it again) and a future
per request: at 200 polls/s that was most of the agent's CPU on the development machine
(``bench/edge.py``). A :class:`ModbusTickGroup` reads all the Modbus TCP devices of one interval
in one task: at the tick it sends the first request to every device at once; ``_COLLECT_S``
later one pass reads every answer that has arrived from the (unregistered, non-blocking)
sockets, so the answers of a tick cost one event-loop wake-up, not one each; a connection whose
answer is not in yet is watched (read as its answer arrives). The next block of a device, or the
next device of the same line, is sent as soon as the previous answer is read, and the task wakes
once, when the last answer of the tick is in, to turn all of them into readings.

What each device keeps from reading it alone (:meth:`ModbusPoller.read`):

* the devices of one bus (several unit ids behind one Modbus TCP gateway) take turns on their
  connection, one request at a time, as the bus lock makes them do;
* each request has its own device's timeout (the connection's watchdog), and the texts of every
  error, the closing of the connection after a timeout or a broken answer, and the reconnect on
  the next poll are the bus's own (:meth:`Bus.tcp_connection`, :meth:`Bus.tcp_error`);
* a device that does not answer never holds up the others: the task waits for the answers of
  its tick only until the next tick; a line still waiting then (up to its device's timeout) is
  skipped by the following ticks, and its answer or error is handed out with a later tick.

A bus belongs to one group (:func:`tick_groups` keeps a bus whose devices have different poll
intervals out of the groups), so nothing else sends on its connection.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Final

from contract.readings import Reading
from edge_agent.collectors import Collector
from edge_agent.collectors.modbus import ModbusPoller
from edge_agent.collectors.modbus_bus import Bus
from edge_agent.collectors.modbus_tcp import ModbusTcpConnection, ModbusTcpError
from edge_agent.errors import DeviceError

_COLLECT_S: Final = 0.01
"""How long after the tick's requests went out their answers are read, in one pass. Modbus TCP
devices on a LAN answer within milliseconds; a device that takes longer is read as its answer
arrives (one event-loop wake-up of its own, as every answer used to cost)."""
_IDLE_S: Final = 0.5
"""A connection idle this long is checked for a hang-up before the next request."""


@dataclass(frozen=True, slots=True)
class Poll:
    """One device's finished poll: its raw blocks (``start -> bytes``) or its error."""

    poller: ModbusPoller
    result: dict[int, bytes] | DeviceError
    ts_ms: int
    """When the poll's tick began, ms since the epoch (the reading's time)."""

    @property
    def device(self) -> str:
        return self.poller.device

    def readings(self) -> list[Reading]:
        """The poll's reading (none when ``report = "change"`` holds it back).

        Raises:
            DeviceError: the poll failed, a register does not decode, or a value is out of range.
        """
        if isinstance(self.result, DeviceError):
            raise self.result
        return self.poller.readings(self.result, self.ts_ms)


class _Line:
    """The devices of one bus polled in one tick: one request after another on its connection."""

    def __init__(self, group: ModbusTickGroup, bus: Bus, pollers: list[ModbusPoller]) -> None:
        self.group = group
        self.bus = bus
        self.pollers = pollers
        self.busy = False
        self.round = 0
        self._todo: deque[ModbusPoller] = deque()
        self._poller = pollers[0]
        self._block = 0
        self._data: dict[int, bytes] = {}
        self._ts_ms = 0
        self.connecting: asyncio.Task[None] | None = None

    def start(self, pollers: list[ModbusPoller], ts_ms: int, round_: int) -> None:
        self.busy = True
        self.round = round_
        self._ts_ms = ts_ms
        self._todo.extend(pollers)
        self._next_device()

    def _next_device(self) -> None:
        if not self._todo or self.group.closed:
            self._todo.clear()
            self.busy = False
            conn = self.bus.live_tcp()
            if conn is not None:
                conn.watch(False)
            self.group.line_done(self)
            return
        self._poller = self._todo.popleft()
        self._block = 0
        self._data = {}
        conn = self.bus.live_tcp()
        if conn is not None and not conn.watching and conn.idle_s() > _IDLE_S:
            # Unwatched, a device's hang-up while idle is only seen here: reconnect now rather
            # than fail this poll.
            conn.receive()
            conn = self.bus.live_tcp()
        if conn is None:
            self.connecting = asyncio.create_task(self._connect(), name=f"modbus-connect-{self.bus.name}")
        else:
            self._send(conn, self._poller.cfg.timeout_s)

    async def _connect(self) -> None:
        p = self._poller
        try:
            conn, remaining_s = await self.bus.tcp_connection(unit=p.cfg.unit_id, timeout_s=p.cfg.timeout_s)
        except DeviceError as exc:
            self.connecting = None
            self._finish(p.error(exc))
            return
        self.connecting = None
        self._send(conn, remaining_s)

    def _send(self, conn: ModbusTcpConnection, timeout_s: float) -> None:
        p = self._poller
        start, count = p.blocks[self._block]
        # Requests sent at the tick are collected in the group's one pass; any later one (the
        # next block or device, after a reconnect) is read as it arrives.
        conn.watch(not self.group.sending)
        try:
            conn.send_read(start, count, unit=p.cfg.unit_id, timeout_s=timeout_s, answer=self._answer)
        except ModbusTcpError as exc:
            self._answer(exc)

    def _answer(self, result: bytes | Exception) -> None:
        p = self._poller
        start, count = p.blocks[self._block]
        if isinstance(result, Exception):
            error = self.bus.tcp_error(result, start, count, unit=p.cfg.unit_id, timeout_s=p.cfg.timeout_s)
            self._finish(p.error(error))
            return
        self._data[start] = result
        self._block += 1
        if self._block == len(p.blocks):
            self._finish(self._data)
            return
        conn = self.bus.live_tcp()
        if conn is None:
            self._answer(ModbusTcpError("connection closed"))
            return
        self._send(conn, p.cfg.timeout_s)

    def _finish(self, result: dict[int, bytes] | DeviceError) -> None:
        if not self.group.closed:
            self.group.done.append(Poll(self._poller, result, self._ts_ms))
        self._next_device()


class ModbusTickGroup:
    """The Modbus TCP devices of one poll interval, read by one task per tick.

    Args:
        pollers: the devices (all with the same ``interval_s``); the devices of one bus must all
            be here, as the group drives the bus's connection alone.
    """

    def __init__(self, pollers: Sequence[ModbusPoller]) -> None:
        if not pollers:
            raise ValueError("a tick group needs at least one device")
        self.pollers = list(pollers)
        self.interval_s = pollers[0].interval_s
        self.devices = [p.device for p in pollers]
        by_bus: dict[int, tuple[Bus, list[ModbusPoller]]] = {}
        for p in pollers:
            by_bus.setdefault(id(p.bus), (p.bus, []))[1].append(p)
        self._lines = [_Line(self, bus, members) for bus, members in by_bus.values()]
        self.done: list[Poll] = []
        self.closed = False
        self._round = 0
        self._waiting_lines = 0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._until_s = 0.0
        self.sending = False
        """True while the tick's first requests go out (they are collected, not watched)."""

    def line_done(self, line: _Line) -> None:
        """A line has no more requests for this round (called by the line)."""
        if line.round == self._round:
            self._waiting_lines -= 1
            if self._waiting_lines == 0:
                self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, due: Container[str] | None, *, until_s: float) -> list[Poll]:
        """Poll the devices in ``due`` (``None``: all) and return the polls finished so far.

        Waits until every line started now is done, or until ``until_s`` on the event loop's clock
        (normally the next tick), whichever comes first. A line still busy from an earlier round
        is not started again; its devices' polls come out of a later call.
        """
        self._round += 1
        self._waiting_lines = 0
        ts_ms = int(time.time() * 1000)
        # A poll that ended after the previous call returned (its answer or error came late) is
        # handed out by this call: its device is not read again before the caller has seen it
        # (a failed device would otherwise be retried at once, before its backoff is set).
        unseen = {poll.device for poll in self.done}
        self.sending = True
        try:
            for line in self._lines:
                if line.busy:
                    continue
                todo = [
                    p for p in line.pollers if (due is None or p.device in due) and p.device not in unseen
                ]
                if todo:
                    self._waiting_lines += 1
                    line.start(todo, ts_ms, self._round)
        finally:
            self.sending = False
        if self._waiting_lines > 0:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            self._until_s = until_s
            self._timer = loop.call_at(min(loop.time() + _COLLECT_S, until_s), self._collect)
            try:
                await waiter
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._waiter = None
        done, self.done = self.done, []
        return done

    def _collect(self) -> None:
        """The one pass over the tick's connections; those still waiting are watched from now on."""
        self._timer = None
        loop = asyncio.get_running_loop()
        for line in self._lines:
            if line.busy and line.round == self._round:
                conn = line.bus.live_tcp()
                if conn is not None and not conn.watching:
                    conn.receive()
        if self._waiting_lines == 0 or self._waiter is None:
            return
        for line in self._lines:
            if line.busy and line.round == self._round:
                conn = line.bus.live_tcp()
                if conn is not None:
                    conn.watch(True)
        if loop.time() >= self._until_s:
            self._wake()
        else:
            self._timer = loop.call_at(self._until_s, self._wake)

    async def aclose(self) -> None:
        """Stop: no more requests; connections in progress are cancelled (the pollers' own
        ``aclose`` releases the buses)."""
        self.closed = True
        self._wake()
        tasks = [line.connecting for line in self._lines if line.connecting is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def tick_groups(collectors: Sequence[Collector]) -> tuple[list[ModbusTickGroup], list[Collector]]:
    """Split ``collectors`` into tick groups (Modbus TCP devices, one group per poll interval) and
    the rest, which keep a task each.

    A bus whose devices have different poll intervals stays out of the groups (its devices take
    turns with the bus lock), so that a connection is driven by one group or by the lock, never
    by both.
    """
    by_bus: dict[int, list[ModbusPoller]] = {}
    rest: list[Collector] = []
    for c in collectors:
        if isinstance(c, ModbusPoller) and c.bus.settings.transport == "tcp":
            by_bus.setdefault(id(c.bus), []).append(c)
        else:
            rest.append(c)
    by_interval: dict[float, list[ModbusPoller]] = {}
    for members in by_bus.values():
        if len({p.interval_s for p in members}) == 1:
            by_interval.setdefault(members[0].interval_s, []).extend(members)
        else:
            rest.extend(members)
    return [ModbusTickGroup(members) for members in by_interval.values()], rest
