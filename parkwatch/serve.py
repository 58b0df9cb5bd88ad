"""``parkwatch serve``: the embedded default for one park or a few, in one process.

What runs, every part the real code path:

1. the DuckDB store, opened once (created with its tables when missing);
2. optionally the embedded MQTT broker (amqtt, MQTT 3.1.1, anonymous: loopback or a closed
   network only);
3. the ingester, writing to the store;
4. the API with the built-in web dashboard, reading the store.

DuckDB lets one process write a file. Here the ingester and the API are the same process: the
API reads through a connection of that process, so there is no lock to fight and no start-up
order to keep. The store file exists as soon as ``serve`` starts (before any broker is
reachable), and the registry of keys and gateways with it: an engineer can provision gateways
and write the broker's password file and ACL first, then start or reload the broker, and the
ingester connects when the broker accepts it (it retries with backoff meanwhile).

``parkwatch demo`` is this assembly plus the firmware simulator and its edge agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parkwatch.embedded_broker import EmbeddedBroker
from settings.errors import ConfigError
from settings.runtime import GRACEFUL_SHUTDOWN_S, tune_gc_for_server
from settings.serve import ServeSettings

log = logging.getLogger(__name__)


def register_ingest_account(settings: ServeSettings, registry: Any) -> str:
    """Put the ingester's own broker account (``[broker]`` username and password) in the registry.

    The broker files written from the registry (``mosquitto-files``) then let it in, whatever
    the order of provisioning. Nothing to do with the embedded broker or without a password.
    Returns the username registered (empty: none).
    """
    from api import mosquitto

    broker = settings.broker
    if settings.embedded_broker.enabled or not broker.username or not broker.password:
        return ""
    stored = dict(registry.services()).get(broker.username)
    if stored is None or not mosquitto.verify_password(broker.password, stored):
        registry.set_service(
            username=broker.username,
            password_hash=mosquitto.hash_password(
                broker.password, iterations=settings.provisioning.pbkdf2_iterations
            ),
        )
    return str(broker.username)


class Platform:
    """Ingester, API and dashboard (and optionally the embedded broker) over one DuckDB connection.

    Args:
        settings: what ``parkwatch serve`` read from its config file.
        api_socket: a listening socket for the API (``settings.ports.listen_socket``).
    """

    def __init__(
        self,
        settings: ServeSettings,
        *,
        api_socket: socket.socket,
    ) -> None:
        self.settings = settings
        self.ingest_settings = settings.ingest_settings()
        self.api_settings = settings.api_settings()
        self._socket = api_socket
        host, port = api_socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"
        """Where the API listens, e.g. ``http://127.0.0.1:8080``."""
        self.ingester: Any = None
        self.registry: Any = None
        self.broker: EmbeddedBroker | None = None
        self._connection: Any = None
        self._server: Any = None
        self._api_task: asyncio.Task[None] | None = None

    @property
    def api_task(self) -> asyncio.Task[None]:
        """The API server's task (done when the API stopped)."""
        assert self._api_task is not None, "start() first"
        return self._api_task

    async def open(self) -> None:
        """Open the store (creating it on a fresh install) and start the embedded broker if asked.

        Called by :meth:`start` when not called before; call it first, outside a task group, to
        get its errors as they are.

        Raises:
            ConfigError: the store cannot be opened (another process holds it).
            OSError: the embedded broker cannot listen on its port.
        """
        import duckdb

        if self._connection is not None:
            return
        path = Path(self.settings.store.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same process, same path and configuration as the ingester's connection: DuckDB shares
        # one database between them. Opening it here creates the file on a fresh install.
        try:
            self._connection = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise ConfigError(
                f"store.path: cannot open the DuckDB store {path}: {exc}. One process may write it: "
                "stop the other parkwatch serve, ingest or api that holds it, or give this one another [store] path"
            ) from exc
        embedded = self.settings.embedded_broker
        if embedded.enabled:
            self.broker = EmbeddedBroker(host=embedded.host, port=embedded.port)
            await self.broker.start()

    async def start(self, tg: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        """Start the ingester and the API in ``tg`` (after :meth:`open`).

        Returns once the API accepts requests; the ingester may still be waiting for its broker
        (``self.ingester.ready`` is set once it has subscribed).

        Raises:
            RuntimeError: the API stopped while starting.
        """
        import uvicorn

        from api.cli import build_app
        from api.registry import Registry
        from ingest.service import Ingester
        from storage.query_duckdb import DuckDBQuery

        await self.open()
        self.ingester = Ingester(self.ingest_settings)
        tg.create_task(self.ingester.run(stop), name="ingest")

        api = self.api_settings
        Path(api.api.registry_path).parent.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(api.api.registry_path)
        register_ingest_account(self.settings, self.registry)
        backend = DuckDBQuery(connection=self._connection, ingest_resolution=api.coverage.ingest_resolution)
        app = build_app(api, backend=backend, registry=self.registry)
        tune_gc_for_server()
        self._server = _QuietServer(
            uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
        )
        self._api_task = tg.create_task(self._server.serve(sockets=[self._socket]), name="api")
        while not self._server.started and not self._api_task.done():  # noqa: ASYNC110 - uvicorn offers a flag only
            await asyncio.sleep(0.05)
        if self._api_task.done():
            raise RuntimeError(f"the API could not start on {self.base_url}")

    def stop_api(self) -> None:
        """Ask the API server to finish its requests and stop."""
        if self._server is not None:
            self._server.should_exit = True

    async def aclose(self) -> None:
        """Stop the broker and close the store (after the tasks in ``start``'s group ended)."""
        self.stop_api()
        if self.broker is not None:
            await self.broker.aclose()
        if self.registry is not None:
            self.registry.close()
        if self._connection is not None:
            # The ingester has closed its connection; the last one closes the database file.
            self._connection.close()
            self._connection = None


class _QuietServer:
    """A uvicorn server without its own signal handling: the owner stops every part on Ctrl-C."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(config)


def run_serve(settings: ServeSettings, api_socket: socket.socket, *, config: str = "") -> int:
    """Run ``parkwatch serve`` until SIGINT/SIGTERM; return the exit code."""
    return asyncio.run(_serve(settings, api_socket, config=config))


async def _serve(settings: ServeSettings, api_socket: socket.socket, *, config: str) -> int:
    from settings.runtime import __version__

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    platform = Platform(settings, api_socket=api_socket)
    try:
        await platform.open()
        async with asyncio.TaskGroup() as tg:
            await platform.start(tg, stop)
            ingest = platform.ingest_settings
            where = (
                f"the embedded broker on {settings.embedded_broker.host}:{settings.embedded_broker.port}"
                if platform.broker is not None
                else f"the broker at {ingest.broker.host}:{ingest.broker.port}"
            )
            log.info(
                "parkwatch serve %s: API and dashboard on %s (dashboard %s/, OpenAPI %s/docs), "
                "store %s, ingesting from %s",
                __version__,
                platform.base_url,
                platform.base_url,
                platform.base_url,
                settings.store.path,
                where,
            )
            api = platform.api_settings
            if not api.keys and not platform.registry.api_keys():
                log.warning(
                    "no API keys yet: create one with `parkwatch serve --config %s key-create --name you "
                    "--role admin` (it may run while serve does)",
                    config or "FILE",
                )
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([stopped, platform.api_task], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            platform.stop_api()
            stop.set()
    finally:
        stop.set()
        await platform.aclose()
    log.info("stopped: %d readings stored", platform.ingester.metrics.readings_stored)
    return 0
