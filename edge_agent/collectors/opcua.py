"""The ``opcua`` collector: one OPC UA server (asyncua), a node map, a subscription or polling.

The agent calls :meth:`OpcuaReader.read` in its supervised loop every ``interval_s``:

- the first call connects (security policy and mode, certificate, user), resolves the node
  map (NodeIds and browse paths) and creates one subscription with a monitored item per node
  (sampling interval, absolute deadband); later calls return the readings made from the data
  changes the server sent since the previous call (waiting for the first one);
- a server that refuses subscriptions is polled instead (``mode = "poll"`` does so from the
  start): every node is read each ``poll_interval_s`` and only changed values are kept;
- a lost connection (asyncua's watchdog, a failed request, a bad subscription status) raises
  :class:`~edge_agent.errors.DeviceError`; the agent backs off and the next call connects and
  subscribes again.

Connections are opened and closed in :mod:`edge_agent.collectors.opcua_client`; values become
readings in :mod:`edge_agent.collectors.opcua_values` (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from settings.errors import ConfigError

try:
    import asyncua  # noqa: F401  (only to say what to install when it is missing)
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "an [[collectors]] table has type opcua but asyncua is not installed: "
        "pip install -c constraints.txt 'parkwatch[edge,opcua]'"
    ) from exc
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from contract.readings import Reading
from edge_agent.collectors.opcua_client import (
    CLIENT_ERRORS,
    close_client,
    describe,
    open_client,
    quiet_publish_loss,
    resolve_nodes,
    sample_of,
    security_text,
)
from edge_agent.collectors.opcua_values import ReadingAssembler, Sample
from edge_agent.errors import DeviceError
from settings.edge_opcua import OpcuaCollector

log = logging.getLogger(__name__)

_FILTER_REFUSED: Final = frozenset(
    {
        StatusCodes.BadFilterNotAllowed,
        StatusCodes.BadMonitoredItemFilterUnsupported,
        StatusCodes.BadDeadbandFilterInvalid,
        StatusCodes.BadMonitoredItemFilterInvalid,
    }
)
_NO_SUBSCRIPTIONS: Final = frozenset(
    {
        StatusCodes.BadServiceUnsupported,
        StatusCodes.BadTooManySubscriptions,
        StatusCodes.BadNotSupported,
        StatusCodes.BadTooManyMonitoredItems,
    }
)


def build(cfg: OpcuaCollector) -> list[OpcuaReader]:
    """One reader per configured server."""
    return [OpcuaReader(cfg)]


class OpcuaReader:
    """Reads one OPC UA server; see the module docstring.

    Attributes:
        device: the connection's name (``[[collectors]] name``).
        interval_s: the publishing interval (subscription) or the poll interval.
        polling: whether values are polled (``mode = "poll"`` or the server refused subscriptions).
        missing: node index -> why that node is left out (unknown node, refused item).
    """

    def __init__(self, cfg: OpcuaCollector) -> None:
        self.cfg = cfg
        self.device = cfg.name
        self.polling = cfg.mode == "poll"
        self.interval_s = cfg.poll_interval_s if self.polling else cfg.publishing_interval_s
        self.missing: dict[int, str] = {}
        self.dropped = 0
        """Notifications dropped because more than ``queue_max`` waited between two reads."""
        self._assembler = ReadingAssembler(
            cfg.nodes, timestamps=cfg.timestamps, report_period_s=cfg.report_period_s
        )
        self._client: Client | None = None
        self._nodes: list[tuple[int, Node]] = []
        self._sub: Subscription | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pending: list[Sample] = []
        self._wake = asyncio.Event()
        self._lost: str | None = None
        self._last_polled: dict[int, tuple[Any, int | None, bool]] = {}
        self._told: set[tuple[int, str]] = set()
        self._initial = True
        quiet_publish_loss()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def read(self) -> list[Reading]:
        if self._client is None:
            await self._connect()
        try:
            samples = await (self._poll() if self.polling else self._changes())
        except CLIENT_ERRORS as exc:
            await self._drop(healthy=False)
            raise DeviceError(f"{self.device}: request to {self.cfg.url} failed: {describe(exc)}") from exc
        readings = self._assembler.add(samples, initial=self._initial)
        self._initial = self._initial and not samples
        readings += self._assembler.heartbeat()
        self._tell_problems()
        return readings

    async def aclose(self) -> None:
        await self._drop(healthy=self._lost is None)

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> None:
        self._lost = None
        self._initial = True
        self._last_polled.clear()
        client = await open_client(self.cfg)
        self._client = client
        client.connection_lost_callback = self._on_lost
        try:
            resolved = await resolve_nodes(client, self.cfg.nodes)
            self.missing = {i: r for i, r in enumerate(resolved) if isinstance(r, str)}
            self._nodes = [(i, r) for i, r in enumerate(resolved) if not isinstance(r, str)]
            if not self._nodes:
                raise DeviceError(
                    f"{self.device}: none of the {len(resolved)} nodes of the map exists on {self.cfg.url} "
                    f"(first: {next(iter(self.missing.values()))}); fix the node map (parkwatch edge doctor)"
                )
            if not self.polling:
                await self._subscribe(client)
        except CLIENT_ERRORS as exc:
            await self._drop(healthy=False)
            raise DeviceError(f"{self.device}: setting up {self.cfg.url} failed: {describe(exc)}") from exc
        except DeviceError:
            await self._drop(healthy=True)
            raise
        for i, why in self.missing.items():
            n = self.cfg.nodes[i]
            log.warning(
                "%s: node of %s.%s left out: %s; fix the node map (parkwatch edge doctor lists every node)",
                self.device,
                n.device,
                n.field,
                why,
            )
        log.info(
            "%s: connected to %s (%s), %d nodes %s",
            self.device,
            self.cfg.url,
            security_text(self.cfg),
            len(self._nodes),
            "polled" if self.polling else "subscribed",
        )

    async def _on_lost(self, exc: Exception) -> None:
        self._lost = describe(exc)
        self._wake.set()

    async def _drop(self, *, healthy: bool) -> None:
        client, self._client = self._client, None
        pump, self._pump = self._pump, None
        self._sub = None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        if client is not None:
            await close_client(client, healthy=healthy, timeout_s=min(2.0, self.cfg.timeout_s))

    # ------------------------------------------------------------------ subscription

    async def _subscribe(self, client: Client) -> None:
        try:
            sub = await client.create_subscription(
                self.cfg.publishing_interval_s * 1000.0, handler=None, queue_maxsize=self.cfg.queue_max
            )
        except UaStatusCodeError as exc:
            if exc.code not in _NO_SUBSCRIPTIONS:
                raise
            log.warning(
                "%s: %s refuses subscriptions (%s); polling instead", self.device, self.cfg.url, describe(exc)
            )
            self.polling = True
            self.interval_s = self.cfg.poll_interval_s
            return
        self._sub = sub
        results = await sub.create_monitored_items(
            [self._item(i, node, deadband=True) for i, node in self._nodes]
        )
        retry = [
            (i, node)
            for (i, node), r in zip(self._nodes, results, strict=True)
            if isinstance(r, ua.StatusCode) and r.value in _FILTER_REFUSED
        ]
        if retry:
            log.warning(
                "%s: the server refuses deadband filters on %d node(s); they report every change",
                self.device,
                len(retry),
            )
            again = await sub.create_monitored_items(
                [self._item(i, node, deadband=False) for i, node in retry]
            )
            fixed = dict(zip((i for i, _ in retry), again, strict=True))
            results = [fixed.get(i, r) for (i, _), r in zip(self._nodes, results, strict=True)]
        for (i, _), r in zip(self._nodes, results, strict=True):
            if isinstance(r, ua.StatusCode):
                self.missing[i] = f"monitored item refused: {r.name}"
        self._nodes = [(i, n) for i, n in self._nodes if i not in self.missing]
        if not self._nodes:
            raise DeviceError(
                f"{self.device}: the server refused every monitored item; see the warnings above"
            )
        self._pump = asyncio.create_task(self._pump_events(sub), name=f"opcua-{self.device}")
        self._pump.add_done_callback(self._pump_done)

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        self._lost = f"notification pump stopped: {describe(exc)}" if exc else "subscription closed"
        self._wake.set()

    def _item(self, index: int, node: Node, *, deadband: bool) -> ua.MonitoredItemCreateRequest:
        spec = self.cfg.nodes[index]
        params = ua.MonitoringParameters()
        # Our own client handles: the node's index in the map (+1; 0 is not a valid handle).
        params.ClientHandle = index + 1
        params.SamplingInterval = (spec.sampling_interval_s or self.cfg.sampling_interval_s) * 1000.0
        params.QueueSize = 10
        params.DiscardOldest = True
        if deadband and spec.deadband > 0:
            filt = ua.DataChangeFilter()
            filt.Trigger = ua.DataChangeTrigger.StatusValue
            filt.DeadbandType = ua.DeadbandType.Absolute
            filt.DeadbandValue = spec.deadband
            params.Filter = filt
        item = ua.ReadValueId()
        item.NodeId = node.nodeid
        item.AttributeId = AttributeIds.Value
        req = ua.MonitoredItemCreateRequest()
        req.ItemToMonitor = item
        req.MonitoringMode = ua.MonitoringMode.Reporting
        req.RequestedParameters = params
        return req

    async def _pump_events(self, sub: Subscription) -> None:
        async for ev in sub:
            if isinstance(ev, DataChangeEvent):
                if len(self._pending) >= self.cfg.queue_max:
                    del self._pending[0]
                    self.dropped += 1
                self._pending.append(
                    sample_of(ev.data.monitored_item.ClientHandle - 1, ev.data.monitored_item.Value)
                )
                self._wake.set()
            elif isinstance(ev, StatusChangeEvent) and not ev.notification.Status.is_good():
                self._lost = f"subscription status {ev.notification.Status.name}"
                self._wake.set()

    async def _changes(self) -> list[Sample]:
        if not self._pending and self._lost is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.cfg.report_period_s, 10.0)):
                    await self._wake.wait()
        if self._lost is not None:
            why = self._lost
            await self._drop(healthy=False)
            raise DeviceError(f"{self.device}: connection to {self.cfg.url} lost ({why}); reconnecting")
        samples, self._pending = self._pending, []
        return samples

    # ------------------------------------------------------------------ polling

    async def _poll(self) -> list[Sample]:
        if self._lost is not None:
            why = self._lost
            await self._drop(healthy=False)
            raise DeviceError(f"{self.device}: connection to {self.cfg.url} lost ({why}); reconnecting")
        assert self._client is not None
        async with asyncio.timeout(self.cfg.timeout_s):
            values = await self._client.read_attributes([n for _, n in self._nodes])
        out: list[Sample] = []
        for (i, _), dv in zip(self._nodes, values, strict=True):
            s = sample_of(i, dv)
            key = (s.value, s.source_ms, s.good)
            if self._last_polled.get(i) != key:
                self._last_polled[i] = key
                out.append(s)
        return out

    def _tell_problems(self) -> None:
        problems, self._assembler.problems = self._assembler.problems, []
        for p in problems:
            if (p.node, p.reason) in self._told:
                continue
            if len(self._told) > 1000:
                self._told.clear()
            self._told.add((p.node, p.reason))
            n = self.cfg.nodes[p.node]
            log.warning("%s: value of %s.%s left out: %s", self.device, n.device, n.field, p.reason)
