"""Shared fixtures: real servers for integration tests, unique names per test, error-log guard.

Integration servers start once per test session on free loopback ports. Without the binaries,
integration tests skip with a hint, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import ServerError, ServerProcess, influxdb_server, mosquitto_server

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and a required server is unavailable: {reason}")
    pytest.skip(f"{reason} (install it, or run scripts/test, which installs it)")


def _serve(make: Callable[[Path], ServerProcess], workdir: Path) -> Iterator[ServerProcess]:
    try:
        server = make(workdir)
        server.start()
    except ServerError as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real Mosquitto 2 broker (anonymous, persistent) for the whole test session."""
    yield from _serve(mosquitto_server, tmp_path_factory.mktemp("mosquitto"))


@pytest.fixture
def mosquitto_fresh(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Mosquitto of this test's own, for tests that stop and restart the broker."""
    yield from _serve(mosquitto_server, tmp_path / "mosquitto")


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real InfluxDB 1.x (v1 HTTP API) for the whole test session."""
    yield from _serve(influxdb_server, tmp_path_factory.mktemp("influxdb"))


@pytest.fixture
def influxdb_fresh(tmp_path: Path) -> Iterator[ServerProcess]:
    """An InfluxDB of this test's own, for tests that stop and restart the database."""
    yield from _serve(influxdb_server, tmp_path / "influxdb")


@pytest.fixture
def unique() -> str:
    """A short unique token for topic roots, database names and client ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_root(unique: str) -> str:
    """A topic root of this test's own, so no test sees another's messages."""
    return f"t{unique}/parkwatch"


@pytest.fixture
def influx_db_name(unique: str) -> str:
    return f"pw_{unique}"


@pytest.fixture(autouse=True)
def _fail_on_error_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Exceptions a supervised loop catches and logs still fail the test."""
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and not r.name.startswith(("amqtt", "transitions", "pymodbus"))
    ]
    if errors:
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in errors[:10])
        pytest.fail(f"{len(errors)} ERROR log record(s) during the test:\n{lines}")
