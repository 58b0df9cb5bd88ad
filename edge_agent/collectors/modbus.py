"""The ``modbus`` collector: polls one Modbus TCP device per collector (holding registers)."""

from __future__ import annotations

import time

import msgspec

from contract.readings import KINDS, Generic, Reading
from edge_agent.collectors.modbus_tcp import ModbusTcpClient
from edge_agent.collectors.registers import INTEGER_FIELDS, BlockDecoder, Value, plan_reads, register_map
from edge_agent.errors import DeviceError
from settings.edge import ModbusCollector, ModbusDevice


def build(cfg: ModbusCollector) -> list[ModbusPoller]:
    """One poller per configured device."""
    return [ModbusPoller(d) for d in cfg.devices]


def to_reading(device: ModbusDevice, ts_ms: int, values: dict[str, Value]) -> Reading:
    """Build the contract reading of one poll (``generic`` devices put values under ``f``).

    Raises:
        DeviceError: a value is out of the contract's range (the device or its map is wrong).
    """
    tags = dict(device.tags) if device.tags else None
    try:
        if device.kind == "generic":
            return msgspec.convert({"ts": ts_ms, "dev": device.id, "tags": tags, "f": values}, Generic)
        fields = {
            k: (int(v) if k in INTEGER_FIELDS and not isinstance(v, str) else v) for k, v in values.items()
        }
        reading: Reading = msgspec.convert(
            {"ts": ts_ms, "dev": device.id, "tags": tags, **fields}, KINDS[device.kind]
        )
    except msgspec.ValidationError as exc:
        raise DeviceError(f"{device.id}: value out of contract range: {exc}") from exc
    return reading


class ModbusPoller:
    """Reads one Modbus TCP device; reports on every poll or only on change (plus a heartbeat)."""

    def __init__(self, device: ModbusDevice) -> None:
        self.cfg = device
        self.device = device.id
        self.interval_s = device.poll_interval_s
        self._registers = register_map(device)
        self._blocks = plan_reads(self._registers)
        self._decoder = BlockDecoder(self._registers, self._blocks)
        self._client = ModbusTcpClient(device.host, device.port, timeout_s=device.timeout_s)
        self._last: dict[str, Value] | None = None
        self._last_report = 0.0

    async def read_values(self) -> dict[str, Value]:
        """Read and decode every register of the map."""
        data: dict[int, bytes] = {}
        try:
            for start, count in self._blocks:
                data[start] = await self._client.read_holding_bytes(start, count, unit=self.cfg.unit_id)
        except DeviceError as exc:
            raise DeviceError(f"{self.device}: {exc}") from exc
        try:
            return self._decoder.decode(data)
        except ValueError as exc:
            raise DeviceError(f"{self.device}: {exc}") from exc

    async def read(self) -> list[Reading]:
        ts_ms = int(time.time() * 1000)
        values = await self.read_values()
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

    async def aclose(self) -> None:
        await self._client.aclose()
