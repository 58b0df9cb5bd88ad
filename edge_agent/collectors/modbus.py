"""The ``modbus`` collector: polls one Modbus TCP device per collector through pymodbus."""

from __future__ import annotations

import time

import msgspec
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from contract.readings import KINDS, Generic, Reading
from edge_agent.collectors.registers import INTEGER_FIELDS, Value, decode_block, plan_reads, register_map
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
        self._client: AsyncModbusTcpClient | None = None
        self._last: dict[str, Value] | None = None
        self._last_report = 0.0

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is None or not self._client.connected:
            if self._client is not None:
                self._client.close()
            # pymodbus' own retries and reconnects are off: the agent's loop backs off instead.
            self._client = AsyncModbusTcpClient(
                self.cfg.host, port=self.cfg.port, timeout=self.cfg.timeout_s, retries=0, reconnect_delay=0
            )
            if not await self._client.connect():
                raise DeviceError(f"{self.device}: no Modbus TCP answer at {self.cfg.host}:{self.cfg.port}")
        return self._client

    async def read_values(self) -> dict[str, Value]:
        """Read and decode every register of the map."""
        client = await self._connected()
        words: dict[int, list[int]] = {}
        try:
            for start, count in self._blocks:
                rr = await client.read_holding_registers(start, count=count, device_id=self.cfg.unit_id)
                if rr.isError():
                    raise DeviceError(
                        f"{self.device}: Modbus error reading {count} registers at {start}: {rr}"
                    )
                words[start] = list(rr.registers)
        except ModbusException as exc:
            client.close()
            raise DeviceError(f"{self.device}: Modbus request failed: {exc}") from exc
        try:
            return decode_block(self._registers, words)
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
        if self._client is not None:
            self._client.close()
            self._client = None
