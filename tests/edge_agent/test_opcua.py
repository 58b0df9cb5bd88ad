"""The OPC UA collector against real asyncua servers on free loopback ports.

In-process servers (the simulator's factory server, a bare asyncua server) and a subprocess
reproducing asyncua's own ``examples/server-minimal.py`` layout, which nobody configured for us.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from contract.readings import Environment, Generic, Machine, Reading
from edge_agent.agent import Agent
from edge_agent.collectors.opcua import OpcuaReader
from edge_agent.doctor_opcua import check_server
from edge_agent.errors import DeviceError
from edge_agent.init_config import OpcuaInit, browse_opcua
from edge_agent.main import load
from firmware_sim.devices.opcua_server import OpcuaDevice, OpcuaFactoryServer
from settings.edge_opcua import OpcuaCollector
from tests.edge_agent.helpers import Subscriber
from tests.edge_agent.opcua_helpers import example_server, make_certificate, opcua_settings
from tests.servers import ServerProcess, free_port

# One event loop for the module, so that one factory server (asyncua builds its standard address
# space in seconds) serves every test that does not need a server of its own.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

MACHINE: dict[str, float | int | str] = {
    "state": "running",
    "spindle_temp_c": 61.3,
    "motor_temp_c": 44.5,
    "parts_total": 70000,
}


def factory(values: dict[str, float | int | str], **options: Any) -> OpcuaFactoryServer:
    """A one-machine factory server that only scans when the test says so."""
    return OpcuaFactoryServer(
        name="gw-t",
        factory="Test Hall",
        devices=[OpcuaDevice("cnc-01", "machine", lambda: dict(values))],
        scan_s=3600.0,
        **options,
    )


@dataclass
class Shared:
    srv: OpcuaFactoryServer
    values: dict[str, float | int | str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[Shared]:
    """The module's factory server: cnc-01 (MACHINE, restored after each use) and env-1."""
    values = dict(MACHINE)
    env: dict[str, float | int | str] = {"temp_c": 20.0}
    srv = OpcuaFactoryServer(
        name="gw-t",
        factory="Test Hall",
        devices=[
            OpcuaDevice("cnc-01", "machine", lambda: dict(values)),
            OpcuaDevice("env-1", "environment", lambda: dict(env)),
        ],
        scan_s=3600.0,
    )
    async with started(srv):
        yield Shared(srv, values)


@pytest_asyncio.fixture(loop_scope="module")
async def plant(shared: Shared) -> AsyncIterator[Shared]:
    """The shared server with cnc-01 back at MACHINE afterwards."""
    try:
        yield shared
    finally:
        shared.values.clear()
        shared.values.update(MACHINE)
        await shared.srv.scan()


def machine_nodes(srv: OpcuaFactoryServer, fields: list[str] | None = None) -> list[dict[str, Any]]:
    return [
        {"node_id": srv.node_id("cnc-01", f), "device": "cnc-01", "kind": "machine", "field": f}
        for f in fields or list(MACHINE)
    ]


async def read_until(reader: OpcuaReader, pred: Any, *, reads: int = 50) -> list[Reading]:
    """Call ``read()`` as the agent does until the readings so far satisfy ``pred``."""
    got: list[Reading] = []
    for _ in range(reads):
        got += await reader.read()
        if pred(got):
            return got
    raise AssertionError(f"condition not met after {reads} reads: {got[-3:]}")


@contextlib.contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Hold one third-party logger at CRITICAL (the server under test logging an expected refusal)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.asynccontextmanager
async def started(srv: OpcuaFactoryServer, port: int = 0) -> AsyncIterator[OpcuaFactoryServer]:
    await srv.start(port)
    try:
        yield srv
    finally:
        await srv.aclose()


async def test_subscription_delivers_changes_with_the_servers_source_timestamps(plant: Shared) -> None:
    srv = plant.srv
    source_ms = 1767323045678  # 2026-01-02T03:04:05.678Z, far from the gateway's clock
    nodes = [
        {
            "node_id": srv.node_id("env-1", "temp_c"),
            "device": "env-1",
            "kind": "environment",
            "field": "temp_c",
        }
    ]
    reader = OpcuaReader(opcua_settings(srv.url, nodes))
    try:
        first = await read_until(reader, lambda rs: rs)
        assert isinstance(first[0], Environment) and first[0].temp_c == 20.0
        await srv.write("env-1", "temp_c", 23.5, source_ms=source_ms)
        got = await read_until(reader, lambda rs: any(getattr(r, "temp_c", None) == 23.5 for r in rs))
        await srv.write("env-1", "temp_c", 20.0)
    finally:
        await reader.aclose()
    changed = [r for r in got if getattr(r, "temp_c", None) == 23.5]
    # The reading time is the PLC's SourceTimestamp, to the millisecond, not the gateway's clock.
    assert [r.ts for r in changed] == [source_ms]


async def test_readings_are_device_snapshots_one_per_scan(plant: Shared) -> None:
    values, srv = plant.values, plant.srv
    reader = OpcuaReader(opcua_settings(srv.url, machine_nodes(srv)))
    try:
        first = await read_until(reader, lambda rs: rs)
        assert isinstance(first[-1], Machine)
        assert (first[-1].state, first[-1].spindle_temp_c, first[-1].parts_total) == (
            "running",
            61.3,
            70000,
        )
        values.update(state="fault", parts_total=70001)
        await srv.scan()
        got = await read_until(reader, lambda rs: any(getattr(r, "state", "") == "fault" for r in rs))
    finally:
        await reader.aclose()
    fault = [r for r in got if isinstance(r, Machine) and r.state == "fault"]
    # Both changes of one scan make one reading that still carries the unchanged fields.
    assert len(fault) == 1
    assert (fault[0].parts_total, fault[0].spindle_temp_c, fault[0].motor_temp_c) == (70001, 61.3, 44.5)


async def test_poll_mode_reads_values_and_keeps_only_changes(plant: Shared) -> None:
    values, srv = plant.values, plant.srv
    reader = OpcuaReader(opcua_settings(srv.url, machine_nodes(srv), mode="poll", poll_interval_s=0.05))
    try:
        first = await reader.read()
        again = await reader.read()
        values["spindle_temp_c"] = 70.0
        await srv.scan()
        changed = await reader.read()
    finally:
        await reader.aclose()
    assert reader.polling and len(first) == 1 and first[0].dev == "cnc-01"
    assert again == []
    assert len(changed) == 1 and isinstance(changed[0], Machine) and changed[0].spindle_temp_c == 70.0


async def test_basic256sha256_sign_and_encrypt_with_user_and_password(tmp_path: Path) -> None:
    server_cert, server_key = make_certificate(tmp_path, "server", "urn:parkwatch:sim:server:gw-t")
    client_cert, client_key = make_certificate(tmp_path, "gateway", "urn:parkwatch:edge:gw-1")
    srv = factory(
        dict(MACHINE),
        certificate=str(server_cert),
        private_key=str(server_key),
        users={"operator": "Hai-Phong-2026"},
    )
    secure = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate": str(client_cert),
        "private_key": str(client_key),
        "server_certificate": str(server_cert),
        "username": "operator",
        "password": "Hai-Phong-2026",
    }
    async with started(srv):
        reader = OpcuaReader(opcua_settings(srv.url, machine_nodes(srv), **secure))
        try:
            got = await read_until(reader, lambda rs: rs)
        finally:
            await reader.aclose()
        assert isinstance(got[0], Machine) and got[0].state == "running"

        wrong = OpcuaReader(
            opcua_settings(srv.url, machine_nodes(srv), **(secure | {"password": "wrong-one"}))
        )
        with (
            quiet("asyncua.server"),  # the server logs its refusal at ERROR: expected here
            pytest.raises(DeviceError, match=r"cannot open .*Basic256Sha256 SignAndEncrypt, user operator"),
        ):
            await wrong.read()
        await wrong.aclose()

        plain = OpcuaReader(opcua_settings(srv.url, machine_nodes(srv)))
        with quiet("asyncua.server"), pytest.raises(DeviceError, match=r"\(no security, anonymous\)"):
            await plain.read()
        await plain.aclose()

        rows = {c.name: c for c in await check_server(opcua_settings(srv.url, machine_nodes(srv), **secure))}
        assert (
            rows["opcua endpoint"].result == "pass"
            and "Basic256Sha256/SignAndEncrypt" in rows["opcua endpoint"].detail
        )
        assert rows["opcua security"].result == "pass"
        assert rows["opcua nodes"].result == "pass"
        unpinned = secure | {"server_certificate": ""}
        rows = {
            c.name: c for c in await check_server(opcua_settings(srv.url, machine_nodes(srv), **unpinned))
        }
        assert rows["opcua security"].result == "warn" and "NOT verified" in rows["opcua security"].detail
        rows = {c.name: c for c in await check_server(opcua_settings(srv.url, machine_nodes(srv)))}
        assert (
            rows["opcua endpoint"].result == "fail"
            and "does not offer None/None" in rows["opcua endpoint"].detail
        )


async def test_reconnects_and_resubscribes_after_the_server_restarts() -> None:
    values = dict(MACHINE)
    port = free_port()
    srv = factory(values)
    await srv.start(port)
    reader = OpcuaReader(opcua_settings(srv.url, machine_nodes(srv)))
    try:
        await read_until(reader, lambda rs: rs)
        await srv.aclose()
        # The loss is noticed (transport closed or watchdog) and reported as a device error...
        with pytest.raises(DeviceError, match=r"lost|failed"):
            for _ in range(50):
                await reader.read()
        assert not reader.connected
        # ...and the next read after the agent's backoff connects and subscribes again.
        values.update(state="idle", parts_total=80000)
        async with started(factory(values), port):
            got = await read_until(reader, lambda rs: any(getattr(r, "state", "") == "idle" for r in rs))
        idle = [r for r in got if isinstance(r, Machine) and r.state == "idle"]
        assert idle and idle[0].parts_total == 80000
    finally:
        await reader.aclose()


async def test_doctor_names_the_bad_node(plant: Shared) -> None:
    srv = plant.srv
    nodes = [
        *machine_nodes(srv, ["state"]),
        {
            "node_id": f"ns={srv.ns};s=cnc-01.no_such_value",
            "device": "cnc-01",
            "kind": "machine",
            "field": "motor_temp_c",
        },
        {
            "browse_path": f"{srv.ns}:Factory/{srv.ns}:cnc-01/{srv.ns}:spindle_temp_c",
            "device": "cnc-01",
            "kind": "machine",
            "field": "spindle_temp_c",
        },
    ]
    rows = await check_server(opcua_settings(srv.url, nodes))
    by_name = {c.name: c for c in rows}
    assert (
        by_name["opcua nodes"].result == "fail"
        and by_name["opcua nodes"].detail == "2 of 3 nodes found and read"
    )
    bad = by_name["opcua node cnc-01.motor_temp_c"]
    assert bad.result == "fail" and "BadNodeIdUnknown" in bad.detail and "edge init --opcua" in bad.fix
    assert [c.name for c in rows if c.result == "fail"] == ["opcua nodes", "opcua node cnc-01.motor_temp_c"]


async def test_init_browses_a_server_and_the_agent_uses_the_node_map(
    plant: Shared, mosquitto: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    srv = plant.srv
    out = tmp_path / "edge.toml"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkwatch", "edge", "init", "--opcua", srv.url, "--park", "p1",
        "--gateway", "gw-1", "--broker-port", str(mosquitto.port), "--topic-root", topic_root,
        "--state-dir", str(tmp_path / "state"), "--no-system", "--non-interactive", "--out", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    assert f"{srv.url}: 5 nodes found" in stderr.decode()
    settings, table = load(str(out))
    (op,) = [c for c in settings.collectors if isinstance(c, OpcuaCollector)]
    assert {(n.device, n.kind, n.field) for n in op.nodes} == {
        *[("cnc-01", "machine", f) for f in MACHINE],
        ("env-1", "environment", "temp_c"),
    }

    sub = Subscriber(mosquitto.host, mosquitto.port, topic_root, f"sub-{unique}")
    agent = Agent(settings, file_config=table, version="test", device_backoff=lambda attempt: 0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await sub.wait_for(lambda: bool(sub.readings("cnc-01")), what="a reading of cnc-01")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        sub.close()
    m = sub.readings("cnc-01")[0].reading
    assert isinstance(m, Machine)
    assert (m.state, m.spindle_temp_c, m.motor_temp_c, m.parts_total) == ("running", 61.3, 44.5, 70000)
    assert agent.counters.device_errors == 0


async def test_interop_with_asyncuas_example_server_layout() -> None:
    port = free_port()
    async with example_server(port) as url:
        proposed = await browse_opcua(OpcuaInit(url=url))
        assert [(n.device, n.kind, n.field) for n in proposed.nodes] == [
            ("MyObject", "generic", "my_variable")
        ]
        nodes: list[dict[str, Any]] = [
            {"node_id": proposed.nodes[0].node_id, "device": "MyObject", "field": "my_variable"},
            # Standard namespace 0: Server_ServerStatus_State (i=2259), the ServerState enumeration.
            {
                "node_id": "i=2259",
                "device": "opcua-server",
                "field": "server_state",
                "enum": [
                    "running",
                    "failed",
                    "no_configuration",
                    "suspended",
                    "shutdown",
                    "test",
                    "communication_fault",
                    "unknown",
                ],
            },
        ]
        reader = OpcuaReader(opcua_settings(url, nodes))
        try:
            got = await read_until(
                reader,
                lambda rs: (
                    len({r.f["my_variable"] for r in rs if isinstance(r, Generic) and r.dev == "MyObject"})
                    >= 3
                ),
            )
        finally:
            await reader.aclose()
    state = [r for r in got if isinstance(r, Generic) and r.dev == "opcua-server"]
    assert state and state[0].f == {"server_state": "running"}
    counting = [r for r in got if isinstance(r, Generic) and r.dev == "MyObject"]
    values = [float(r.f["my_variable"]) for r in counting]
    stamps = [r.ts for r in counting]
    # 6.7 at start, then the example's own counter: 0.1, 0.2, ... one step per tick, in order.
    steps = [round(b - a, 6) for a, b in itertools.pairwise(values[1:])]
    assert steps and all(s == 0.1 for s in steps), values
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
