"""Fixtures of the edge agent tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.edge_agent.modbus_peers import Peer, Script
from tests.servers import ServerError, ServerProcess, mosquitto_server


@pytest.fixture
def mosquitto_durable(tmp_path: Path) -> Iterator[ServerProcess]:
    """Like ``mosquitto_fresh``, but its sessions survive a restart even when tests run as root.

    Mosquitto started as root drops to the ``mosquitto`` user and then cannot write its
    persistence file in a root-owned temp dir, so every session is lost on restart; a
    subscriber then misses what the broker acknowledged while it was away. ``user root``
    keeps the privileges (it is ignored when not started as root).
    """
    try:
        server = mosquitto_server(tmp_path / "mosquitto", extra_conf="user root" if os.geteuid() == 0 else "")
        server.start()
    except ServerError as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Script], Awaitable[Peer]]]:
    """Starts scripted Modbus TCP peers (:mod:`tests.edge_agent.modbus_peers`) on loopback ports."""
    started: list[Peer] = []

    async def start(script: Script) -> Peer:
        p = Peer(script)
        p.server = await asyncio.start_server(p._serve, "127.0.0.1", 0)
        started.append(p)
        return p

    yield start
    for p in started:
        assert p.server is not None
        p.server.close()
