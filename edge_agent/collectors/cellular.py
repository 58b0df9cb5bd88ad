"""The ``cellular`` collector: serving cell, operator and GNSS of a modem over AT commands."""

from __future__ import annotations

import time

import msgspec

from contract.readings import NO_SERVICE_RSRP_DBM, Cellular, Reading
from edge_agent.collectors.at_channel import ATChannel, open_channel, split_answer
from edge_agent.collectors.at_parse import (
    Fix,
    Operator,
    ServingCell,
    parse_cesq,
    parse_cops,
    parse_qeng,
    parse_qgpsloc,
)
from edge_agent.errors import DeviceError
from settings.edge import CellularCollector, Modem


def build(cfg: CellularCollector) -> list[ModemReader]:
    """One reader per configured modem."""
    return [ModemReader(m) for m in cfg.modems]


def to_reading(
    dev: str,
    ts_ms: int,
    op: Operator | None,
    cell: ServingCell | None,
    fix: Fix | None,
    *,
    sim_operator: str = "",
    sim_tech: str = "LTE",
) -> Cellular | None:
    """Combine the parsed answers into one contract reading.

    Without service (not registered, or the serving cell query says SEARCH) the reading is a
    ``no_service`` one, for the registered operator or else ``sim_operator``, the SIM's
    configured network name; None when neither is known (no operator to attribute it to).
    """
    if op is None or (cell is not None and cell.tech is None):
        name = op.name if op is not None else sim_operator
        if not name:
            return None
        no_service: dict[str, object] = {
            "ts": ts_ms,
            "dev": dev,
            "operator": name,
            "tech": (op.tech if op is not None else None) or sim_tech,
            "rsrp_dbm": NO_SERVICE_RSRP_DBM,
            "no_service": True,
        }
        if fix is not None:
            no_service.update(lat=fix.lat, lon=fix.lon)
        return msgspec.convert(no_service, Cellular)
    tech = (cell.tech if cell is not None else None) or op.tech
    if tech is None:
        return None
    fields: dict[str, object] = {"ts": ts_ms, "dev": dev, "operator": op.name, "tech": tech}
    if cell is not None and cell.tech is not None:
        for name in (
            "rsrp_dbm",
            "rsrq_db",
            "sinr_db",
            "rssi_dbm",
            "cell_id",
            "pci",
            "band",
            "earfcn",
            "mcc",
            "mnc",
        ):
            value = getattr(cell, name)
            if value is not None:
                fields[name] = value
    if fix is not None:
        fields.update(lat=fix.lat, lon=fix.lon)
        if fix.alt_m is not None and -500 <= fix.alt_m <= 10000:
            fields["alt_m"] = fix.alt_m
    try:
        return msgspec.convert(fields, Cellular)
    except msgspec.ValidationError as exc:
        raise DeviceError(f"{dev}: modem answer out of contract range: {exc}") from exc


class ModemReader:
    """Reads one modem: ``AT+COPS?``, ``AT+QENG="servingcell"`` (else ``AT+CESQ``), ``AT+QGPSLOC=2``."""

    def __init__(self, modem: Modem) -> None:
        self.cfg = modem
        self.device = modem.id
        self.interval_s = modem.interval_s
        self._ch: ATChannel | None = None
        self._has_qeng = True
        self.last: Cellular | None = None
        """The last reading, used for the uplink signal in the agent's status."""

    async def _channel(self) -> ATChannel:
        if self._ch is None:
            ch = await open_channel(
                self.cfg.address, baudrate=self.cfg.baudrate, timeout_s=self.cfg.timeout_s
            )
            try:
                await self._ok(ch, "ATE0")
            except DeviceError:
                await ch.aclose()
                raise
            self._ch = ch
        return self._ch

    async def _ok(self, ch: ATChannel, cmd: str) -> list[str]:
        body, final = split_answer(await ch.command(cmd, timeout_s=self.cfg.timeout_s))
        if final != "OK":
            raise DeviceError(f"{self.device}: {cmd} answered {final}")
        return body

    async def _try(self, ch: ATChannel, cmd: str) -> list[str] | None:
        body, final = split_answer(await ch.command(cmd, timeout_s=self.cfg.timeout_s))
        return body if final == "OK" else None

    async def read(self) -> list[Reading]:
        ts_ms = int(time.time() * 1000)
        try:
            ch = await self._channel()
            op = parse_cops(await self._ok(ch, "AT+COPS?"))
            cell: ServingCell | None = None
            if self._has_qeng:
                body = await self._try(ch, 'AT+QENG="servingcell"')
                if body is None:
                    self._has_qeng = False  # not a Quectel modem: fall back to 27.007 CESQ
                else:
                    try:
                        cell = parse_qeng(body)
                    except ValueError as exc:
                        raise DeviceError(f"{self.device}: {exc}") from exc
            if cell is None and op is not None and op.tech is not None:
                cesq = parse_cesq(await self._try(ch, "AT+CESQ") or [])
                if cesq is not None:
                    nr = op.tech == "NR"
                    cell = ServingCell(
                        tech=op.tech,
                        rsrp_dbm=cesq.ss_rsrp_dbm if nr else cesq.rsrp_dbm,
                        rsrq_db=cesq.ss_rsrq_db if nr else cesq.rsrq_db,
                        sinr_db=cesq.ss_sinr_db if nr else None,
                    )
            fix = parse_qgpsloc(await self._try(ch, "AT+QGPSLOC=2") or []) if self.cfg.gnss else None
        except DeviceError:
            await self.aclose()
            raise
        reading = to_reading(
            self.device, ts_ms, op, cell, fix, sim_operator=self.cfg.operator, sim_tech=self.cfg.tech
        )
        if reading is None:
            return []
        self.last = reading
        return [reading]

    async def aclose(self) -> None:
        if self._ch is not None:
            await self._ch.aclose()
            self._ch = None
