"""Fixtures of the edge agent tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _unavailable
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
