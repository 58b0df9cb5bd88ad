"""The ``modbus`` collector: one poller per device (holding registers), Modbus TCP or RTU, on shared buses."""

from __future__ import annotations

import time

import msgspec

from contract.readings import KINDS, Generic, Reading
from edge_agent.collectors.modbus_bus import Bus, open_buses
from edge_agent.collectors.registers import INTEGER_FIELDS, BlockDecoder, Value, plan_reads, register_map
from edge_agent.errors import DeviceError
from settings.edge import ModbusCollector, ModbusDevice


def build(cfg: ModbusCollector) -> list[ModbusPoller]:
    """One poller per configured device; the devices of one bus (or TCP endpoint) share it."""
    buses = open_buses(cfg.buses, cfg.devices)
    return [ModbusPoller(d, bus=buses[d.id]) for d in cfg.devices]


def to_reading(device: ModbusDevice, ts_ms: int, values: dict[str, Value]) -> Reading:
    """Build the contract reading of one poll (``generic`` devices put values under ``f``).

    Raises:
        DeviceError: a value is out of the contract's range (the device or its map is wrong).
    """
    doc: dict[str, object] = {
        "ts": ts_ms,
        "dev": device.id,
        "tags": dict(device.tags) if device.tags else None,
    }
    try:
        if device.kind == "generic":
            doc["f"] = values
            return msgspec.convert(doc, Generic)
        doc.update(values)
        for k in INTEGER_FIELDS:
            v = doc.get(k)
            if isinstance(v, float):  # a scaled counter
                doc[k] = int(v)
        reading: Reading = msgspec.convert(doc, KINDS[device.kind])
    except msgspec.ValidationError as exc:
        raise DeviceError(f"{device.id}: value out of contract range: {exc}") from exc
    return reading


class ModbusPoller:
    """Reads one Modbus device; reports on every poll or only on change (plus a heartbeat).

    Args:
        device: the device's settings.
        bus: the line it is on, shared with the other devices of that line (default: a
            connection of its own to ``host:port``, Modbus TCP).
    """

    def __init__(self, device: ModbusDevice, *, bus: Bus | None = None) -> None:
        self.cfg = device
        self.device = device.id
        self.interval_s = device.poll_interval_s
        self._registers = register_map(device)
        self._blocks = plan_reads(self._registers)
        self._decoder = BlockDecoder(self._registers, self._blocks)
        if bus is None:
            bus = open_buses([], [device])[device.id]
        self.bus = bus
        self._last: dict[str, Value] | None = None
        self._last_report = 0.0

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """The ``(start, count)`` reads of one poll: neighbouring registers share one request."""
        return self._blocks

    async def fetch(self) -> dict[int, bytes]:
        """Read the raw bytes of every block of the map (``start -> bytes``)."""
        data: dict[int, bytes] = {}
        try:
            for start, count in self._blocks:
                data[start] = await self.bus.read_holding_bytes(
                    start, count, unit=self.cfg.unit_id, timeout_s=self.cfg.timeout_s
                )
        except DeviceError as exc:
            raise self.error(exc) from exc
        return data

    def error(self, exc: DeviceError) -> DeviceError:
        """A bus error as this device's error (its id in front)."""
        return DeviceError(f"{self.device}: {exc}", fix=exc.fix)

    def decode(self, data: dict[int, bytes]) -> dict[str, Value]:
        """Decode every register of the map from the blocks' raw bytes."""
        try:
            return self._decoder.decode(data)
        except ValueError as exc:
            raise DeviceError(f"{self.device}: {exc}") from exc

    async def read_values(self) -> dict[str, Value]:
        """Read and decode every register of the map."""
        return self.decode(await self.fetch())

    def readings(self, data: dict[int, bytes], ts_ms: int) -> list[Reading]:
        """The reading of one poll from its raw blocks (none when ``report = "change"`` holds it back).

        Raises:
            DeviceError: a register does not decode, or a value is outside the contract's range.
        """
        values = self.decode(data)
        now = time.monotonic()
        if (
            self.cfg.report == "change"
            and values == self._last
            and now - self._last_report < self.cfg.report_period_s
        ):
            return []
        reading = to_reading(self.cfg, ts_ms, values)
        self._last = values
        self._last_report = now
        return [reading]

    async def read(self) -> list[Reading]:
        ts_ms = int(time.time() * 1000)
        return self.readings(await self.fetch(), ts_ms)

    async def aclose(self) -> None:
        await self.bus.release()
