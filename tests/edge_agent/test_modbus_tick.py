"""Modbus TCP devices read by one task per tick (``ModbusTickGroup``) against scripted peers.

Each peer is a loopback TCP server answering as its script says (:mod:`tests.edge_agent.modbus_peers`):
a silent one among answering ones, answers that come in reverse order with stale answers first,
broken answers, and a gateway with two unit ids whose maps need two requests each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from contract.readings import Generic
from edge_agent.collectors.modbus import ModbusPoller, build
from edge_agent.collectors.modbus_tick import ModbusTickGroup, Poll, tick_groups
from edge_agent.errors import DeviceError
from settings.edge import ModbusBus, ModbusCollector, ModbusDevice, ModbusRegister
from tests.edge_agent.modbus_peers import Peer, Script, answer, request

ONE = [ModbusRegister(field="v", address=0)]


def poller(device: str, port: int, *, timeout_s: float = 2.0) -> ModbusPoller:
    return ModbusPoller(
        ModbusDevice(
            id=device,
            host="127.0.0.1",
            port=port,
            kind="generic",
            profile="custom",
            registers=ONE,
            timeout_s=timeout_s,
            poll_interval_s=0.1,
        )
    )


def answering(base: int) -> Script:
    """Answers every request with registers ``base + address + i``."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            tid, unit, address, count = await request(reader)
            writer.write(answer(tid, unit, [base + address + i for i in range(count)]))

    return script


async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, _n: int) -> None:
    await reader.read()  # takes the requests, never answers


def values(polls: list[Poll]) -> dict[str, float]:
    out: dict[str, float] = {}
    for poll in polls:
        [reading] = poll.readings()
        assert isinstance(reading, Generic)
        out[poll.device] = reading.f["v"]  # type: ignore[assignment]
    return out


async def test_a_silent_device_among_five_does_not_hold_up_the_others(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    peers = [await (peer(silent) if i == 2 else peer(answering(10 * i))) for i in range(5)]
    group = ModbusTickGroup([poller(f"d{i}", p.port, timeout_s=0.5) for i, p in enumerate(peers)])
    healthy = {"d0": 0.0, "d1": 10.0, "d3": 30.0, "d4": 40.0}
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        # The first tick waits for its answers only until the next tick (0.2 s here).
        first = await group.read(None, until_s=start + 0.2)
        assert values(first) == healthy
        assert 0.2 <= loop.time() - start < 0.5
        # While d2's line waits for its answer, the next ticks skip it and end as soon as the
        # others have answered, however far away the next tick is.
        error_after_s = None
        rounds = 0
        while error_after_s is None:
            t0 = loop.time()
            polls = await group.read(None, until_s=t0 + 30.0)
            assert loop.time() - t0 < 5.0
            rounds += 1
            for poll in polls:
                if poll.device == "d2":
                    with pytest.raises(
                        DeviceError, match=r"d2: no answer from unit 1 at 127\.0\.0\.1:\d+ within 0\.5 s\Z"
                    ):
                        poll.readings()
                    error_after_s = loop.time() - start
            assert values([p for p in polls if p.device != "d2"]) == healthy
        # d2 failed after its own timeout, not later; the others were read on every round.
        assert 0.49 <= error_after_s < 2.0
        assert rounds >= 1
        assert peers[2].connections == 1
        # The next round polls d2 again on a new connection (the late answer cannot be taken for
        # the next one), and waits for it until the next tick only.
        t0 = loop.time()
        polls = await group.read(None, until_s=t0 + 0.2)
        assert values(polls) == healthy
        assert peers[2].connections == 2
    finally:
        await group.aclose()
        for p in group.pollers:
            await p.aclose()


async def test_answers_in_reverse_order_with_stale_answers_first_are_matched_to_their_devices(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    n = 5
    turns = [asyncio.Event() for _ in range(n + 1)]
    turns[n].set()  # the last device answers first
    answered: list[int] = []

    def reverse(i: int) -> Script:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
            while True:
                tid, unit, _address, count = await request(reader)
                await turns[i + 1].wait()
                # A stale answer (another tid, another device's values) before the real one.
                writer.write(answer((tid - 1) & 0xFFFF, unit, [999] * count))
                writer.write(answer(tid, unit, [100 + i] * count))
                await writer.drain()
                answered.append(i)
                turns[i].set()

        return script

    peers = [await peer(reverse(i)) for i in range(n)]
    group = ModbusTickGroup([poller(f"d{i}", p.port) for i, p in enumerate(peers)])
    loop = asyncio.get_running_loop()
    try:
        polls = await group.read(None, until_s=loop.time() + 30.0)
        assert answered == [4, 3, 2, 1, 0]
        assert [p.device for p in polls] == ["d4", "d3", "d2", "d1", "d0"]
        assert values(polls) == {f"d{i}": 100.0 + i for i in range(n)}
    finally:
        await group.aclose()
        for p in group.pollers:
            await p.aclose()


async def test_two_units_behind_one_gateway_take_turns_and_coalesced_reads_split_into_registers(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    seen: list[tuple[int, int, int]] = []

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            tid, unit, address, count = await request(reader)
            seen.append((unit, address, count))
            writer.write(answer(tid, unit, [1000 * unit + address + i for i in range(count)]))

    p = await peer(gateway)
    registers = [
        ModbusRegister(field="a", address=0),
        ModbusRegister(field="b", address=1, scale=0.1),
        ModbusRegister(field="c", address=2, type="uint32"),
        ModbusRegister(field="z", address=40),
    ]
    cfg = ModbusCollector(
        buses=[ModbusBus(id="gw", transport="tcp", host="127.0.0.1", port=p.port)],
        devices=[
            ModbusDevice(
                id=f"u{unit}",
                bus="gw",
                unit_id=unit,
                kind="generic",
                profile="custom",
                registers=registers,
                poll_interval_s=0.1,
            )
            for unit in (1, 2)
        ],
    )
    pollers = build(cfg)
    assert [q.blocks for q in pollers] == [[(0, 4), (40, 1)]] * 2  # four fields, two requests
    [group], rest = tick_groups(pollers)
    assert rest == []
    assert isinstance(group, ModbusTickGroup)
    loop = asyncio.get_running_loop()
    try:
        polls = await group.read(None, until_s=loop.time() + 30.0)
        # One connection, one request at a time: each device's blocks in order, then the next unit.
        assert seen == [(1, 0, 4), (1, 40, 1), (2, 0, 4), (2, 40, 1)]
        assert p.connections == 1
        got = {}
        for poll in polls:
            [reading] = poll.readings()
            assert isinstance(reading, Generic)
            got[poll.device] = reading.f
        assert got == {
            f"u{u}": {
                "a": 1000 * u,
                "b": pytest.approx((1000 * u + 1) * 0.1),
                "c": (1000 * u + 2) * 65536 + 1000 * u + 3,
                "z": 1000 * u + 40,
            }
            for u in (1, 2)
        }
    finally:
        await group.aclose()
        for q in pollers:
            await q.aclose()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"\x00\x01\x00\x07\x00\x03\x01\x03\x00", "not a Modbus TCP answer"),
        (answer(1, 1, [1, 2, 3]), "malformed answer to a read of 1 registers"),
        (b"", "connection closed by the device"),
    ],
    ids=["protocol-id", "wrong-count", "hang-up"],
)
async def test_broken_answers_are_this_devices_errors_and_it_reconnects_next_tick(
    peer: Callable[[Script], Awaitable[Peer]], reply: bytes, message: str
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        tid, unit, _address, count = await request(reader)
        if n == 1:
            writer.write(reply)
            await writer.drain()
            if reply:
                await reader.read()
            return
        writer.write(answer(tid, unit, [7] * count))
        await answering(7)(reader, writer, n)

    broken = await peer(script)
    fine = await peer(answering(50))
    group = ModbusTickGroup([poller("bad", broken.port), poller("ok", fine.port)])
    loop = asyncio.get_running_loop()
    try:
        polls = await group.read(None, until_s=loop.time() + 30.0)
        [bad] = [q for q in polls if q.device == "bad"]
        with pytest.raises(
            DeviceError, match=rf"bad: Modbus request to unit 1 at 127\.0\.0\.1:\d+ failed: {message}\Z"
        ):
            bad.readings()
        assert values([q for q in polls if q.device == "ok"]) == {"ok": 50.0}
        polls = await group.read(None, until_s=loop.time() + 30.0)
        assert values(polls) == {"bad": 7.0, "ok": 50.0}
        assert broken.connections == 2
    finally:
        await group.aclose()
        for q in group.pollers:
            await q.aclose()


async def test_a_device_left_out_of_a_tick_is_not_polled(peer: Callable[[Script], Awaitable[Peer]]) -> None:
    peers = [await peer(answering(10 * i)) for i in range(3)]
    group = ModbusTickGroup([poller(f"d{i}", p.port) for i, p in enumerate(peers)])
    loop = asyncio.get_running_loop()
    try:
        polls = await group.read({"d0", "d2"}, until_s=loop.time() + 30.0)
        assert values(polls) == {"d0": 0.0, "d2": 20.0}
        assert peers[1].connections == 0
    finally:
        await group.aclose()
        for q in group.pollers:
            await q.aclose()


def test_tick_groups_take_modbus_tcp_devices_by_interval_and_leave_the_rest() -> None:
    def dev(device: str, interval_s: float, **where: object) -> ModbusDevice:
        return ModbusDevice(id=device, poll_interval_s=interval_s, **where)  # type: ignore[arg-type]

    cfg = ModbusCollector(
        buses=[
            ModbusBus(id="gw", transport="tcp", host="10.0.0.9"),
            ModbusBus(id="mixed", transport="tcp", host="10.0.0.8"),
            ModbusBus(id="line", transport="rtu_over_tcp", host="10.0.0.7", port=4001),
        ],
        devices=[
            dev("a", 0.1, host="10.0.0.1"),
            dev("b", 0.1, host="10.0.0.2"),
            dev("c", 1.0, host="10.0.0.3"),
            dev("g1", 0.1, bus="gw", unit_id=1),
            dev("g2", 0.1, bus="gw", unit_id=2),
            dev("m1", 0.1, bus="mixed", unit_id=1),
            dev("m2", 1.0, bus="mixed", unit_id=2),
            dev("r1", 0.1, bus="line", unit_id=1),
        ],
    )
    groups, rest = tick_groups(build(cfg))
    assert sorted((g.interval_s, sorted(g.devices)) for g in groups) == [
        (0.1, ["a", "b", "g1", "g2"]),
        (1.0, ["c"]),
    ]
    # A TCP gateway whose units have different intervals, and RTU lines, keep a task per device.
    assert sorted(c.device for c in rest) == ["m1", "m2", "r1"]


async def test_a_poll_that_ends_between_calls_is_handed_out_before_its_device_is_read_again(
    peer: Callable[[Script], Awaitable[Peer]],
) -> None:
    """A late answer (after the call that started it returned) comes out of the next call, and
    that call does not read the device again: the caller sees every result (an error sets a
    backoff) before the device is polled once more."""
    requests = 0
    finished = asyncio.Event()

    class Done(list[Poll]):
        def append(self, poll: Poll) -> None:
            super().append(poll)
            finished.set()

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        nonlocal requests
        while True:
            tid, unit, _address, count = await request(reader)
            requests += 1
            await asyncio.sleep(0.3)
            writer.write(answer(tid, unit, [5] * count))
            await writer.drain()

    slow = await peer(late)
    group = ModbusTickGroup([poller("slow", slow.port)])
    loop = asyncio.get_running_loop()
    try:
        assert await group.read(None, until_s=loop.time() + 0.05) == []
        group.done = Done()
        await finished.wait()  # the watched connection reads the answer as it arrives
        polls = await group.read(None, until_s=loop.time() + 0.05)
        assert values(polls) == {"slow": 5.0}
        assert requests == 1  # not read again in the call that handed out its late answer
        polls = await group.read(None, until_s=loop.time() + 30.0)
        assert values(polls) == {"slow": 5.0}
        assert requests == 2
    finally:
        await group.aclose()
        for q in group.pollers:
            await q.aclose()
