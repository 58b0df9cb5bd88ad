"""The ``wifi`` collector: runs ``iw`` or ``nmcli`` and reports every access point seen."""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec

from contract.readings import Reading, Wifi
from edge_agent.collectors.wifi_parse import NMCLI_FIELDS, AccessPoint, parse_iw_scan, parse_nmcli
from edge_agent.errors import DeviceError
from settings.edge import WifiCollector


def build(cfg: WifiCollector) -> list[WifiScanner]:
    """One scanner per table."""
    return [WifiScanner(cfg)]


def to_readings(dev: str, ts_ms: int, aps: list[AccessPoint]) -> list[Reading]:
    """Contract readings of a scan; access points with out-of-range values are skipped."""
    out: list[Reading] = []
    for ap in aps:
        fields = {
            "ts": ts_ms,
            "dev": dev,
            "ssid": ap.ssid,
            "bssid": ap.bssid,
            "rssi_dbm": ap.rssi_dbm,
            "freq_mhz": ap.freq_mhz,
            "channel": ap.channel,
        }
        with contextlib.suppress(msgspec.ValidationError):
            out.append(msgspec.convert({k: v for k, v in fields.items() if v is not None}, Wifi))
    return out


class WifiScanner:
    """Scans with the configured tool."""

    def __init__(self, cfg: WifiCollector) -> None:
        self.cfg = cfg
        self.device = cfg.device
        self.interval_s = cfg.interval_s

    def argv(self) -> list[str]:
        if self.cfg.tool == "iw":
            return ["iw", "dev", self.cfg.interface, "scan"]
        return ["nmcli", "-t", "-f", NMCLI_FIELDS, "dev", "wifi", "list", "--rescan", "auto"]

    async def read(self) -> list[Reading]:
        argv = self.argv()
        ts_ms = int(time.time() * 1000)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise DeviceError(f"{self.device}: cannot run {argv[0]}: {exc}") from exc
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                out, err = await proc.communicate()
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise DeviceError(f"{self.device}: {argv[0]} took longer than {self.cfg.timeout_s}s") from exc
        if proc.returncode != 0:
            raise DeviceError(f"{self.device}: {' '.join(argv)} failed: {err.decode(errors='replace')[:200]}")
        text = out.decode("utf-8", "replace")
        aps = parse_iw_scan(text) if self.cfg.tool == "iw" else parse_nmcli(text)
        return to_readings(self.device, ts_ms, aps)

    async def aclose(self) -> None:
        return None
