"""Collectors: one small protocol, one module per source, registered by name with lazy imports.

A collector reads one device (or one probe) and returns contract readings. The agent runs
each collector in its own supervised loop: a failure is logged, counted and retried with
capped, jittered backoff, and never stops the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Container
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from contract.readings import Reading
from settings.edge import CollectorSettings, CollectorType, ModbusCollector

if TYPE_CHECKING:
    from edge_agent.collectors.modbus_tick import Poll


@runtime_checkable
class Collector(Protocol):
    """Reads one device.

    Attributes:
        device: the device id, for logs and the doctor's table.
        interval_s: time between two reads.
    """

    device: str
    interval_s: float

    async def read(self) -> list[Reading]:
        """Read the device now; raise :class:`edge_agent.errors.DeviceError` when it fails."""
        ...

    async def aclose(self) -> None:
        """Release connections (called when the collectors are rebuilt or the agent stops)."""
        ...


COLLECTORS: Final[dict[CollectorType, str]] = {
    "modbus": "edge_agent.collectors.modbus:build",
    "cellular": "edge_agent.collectors.cellular:build",
    "broadband": "edge_agent.collectors.broadband:build",
    "wifi": "edge_agent.collectors.wifi:build",
    "system": "edge_agent.collectors.system:build",
    "opcua": "edge_agent.collectors.opcua:build",
}
"""Collector type -> ``module:function`` building the collectors of one ``[[collectors]]`` table."""


def build_collectors(configs: list[CollectorSettings]) -> list[Collector]:
    """Build every collector of the settings (one per device), importing modules lazily."""
    out: list[Collector] = []
    for cfg in configs:
        kind: CollectorType = cfg.__struct_config__.tag  # type: ignore[assignment]
        module_name, _, func = COLLECTORS[kind].partition(":")
        out.extend(getattr(importlib.import_module(module_name), func)(cfg))
    return out


class TickGroup(Protocol):
    """Reads several devices of one interval in one task per tick (one event-loop wake-up for all).

    Attributes:
        devices: the device ids, for logs and the doctor's table.
        interval_s: time between two reads.
    """

    devices: list[str]
    interval_s: float

    async def read(self, due: Container[str] | None, *, until_s: float) -> list[Poll]:
        """Read the devices in ``due`` (``None``: all) and return every poll finished so far
        (``poll.device``; ``poll.readings()`` raises its ``DeviceError``); waits at most until
        ``until_s`` on the event loop's clock."""
        ...

    async def aclose(self) -> None:
        """Stop reading (the collectors' own ``aclose`` releases their connections)."""
        ...


def tick_groups(
    configs: list[CollectorSettings], collectors: list[Collector]
) -> tuple[list[TickGroup], list[Collector]]:
    """The collectors read in tick groups (Modbus TCP devices, one group per poll interval), and
    the rest, which keep a task each."""
    if not any(isinstance(cfg, ModbusCollector) for cfg in configs):
        return [], collectors
    from edge_agent.collectors.modbus_tick import tick_groups as modbus_groups

    groups, rest = modbus_groups(collectors)
    return list(groups), rest
