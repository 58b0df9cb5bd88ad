"""Pure parsers of Wi-Fi scan output: ``iw dev <if> scan`` and ``nmcli -t -f ... dev wifi list``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

NMCLI_FIELDS: Final = "SSID,BSSID,CHAN,FREQ,SIGNAL"
"""The ``-f`` fields :func:`parse_nmcli` expects, in this order."""


@dataclass(frozen=True, slots=True)
class AccessPoint:
    """One access point of a scan."""

    bssid: str
    ssid: str | None
    rssi_dbm: float | None
    freq_mhz: int | None
    channel: int | None


def channel_of(freq_mhz: int) -> int | None:
    """IEEE 802.11 channel number of a centre frequency (2.4, 5 and 6 GHz bands)."""
    if freq_mhz == 2484:
        return 14
    if 2412 <= freq_mhz <= 2472:
        return (freq_mhz - 2407) // 5
    if 5955 <= freq_mhz <= 7115:
        return (freq_mhz - 5950) // 5
    if 5160 <= freq_mhz <= 5885:
        return (freq_mhz - 5000) // 5
    return None


_BSS_RE: Final = re.compile(r"^BSS ([0-9a-fA-F:]{17})")


def parse_iw_scan(text: str) -> list[AccessPoint]:
    """Parse ``iw dev <if> scan`` output (one ``BSS`` block per access point)."""
    aps: list[AccessPoint] = []
    cur: dict[str, object] | None = None

    def flush() -> None:
        if cur is not None:
            freq = cur.get("freq")
            chan = cur.get("channel")
            if chan is None and isinstance(freq, int):
                chan = channel_of(freq)
            aps.append(
                AccessPoint(
                    bssid=str(cur["bssid"]),
                    ssid=cur.get("ssid") or None,  # type: ignore[arg-type]
                    rssi_dbm=cur.get("signal"),  # type: ignore[arg-type]
                    freq_mhz=freq if isinstance(freq, int) else None,
                    channel=chan if isinstance(chan, int) else None,
                )
            )

    for raw in text.splitlines():
        m = _BSS_RE.match(raw)
        if m:
            flush()
            cur = {"bssid": m.group(1).lower()}
            continue
        if cur is None:
            continue
        line = raw.strip()
        if line.startswith("freq:"):
            cur["freq"] = int(float(line.split(":", 1)[1]))
        elif line.startswith("signal:"):
            cur["signal"] = float(line.split(":", 1)[1].split()[0])
        elif line.startswith("SSID:"):
            cur["ssid"] = line[5:].strip()
        elif line.startswith("DS Parameter set: channel"):
            cur["channel"] = int(line.rsplit(" ", 1)[1])
        elif line.startswith("* primary channel:") and "channel" not in cur:
            cur["channel"] = int(line.rsplit(":", 1)[1])
    flush()
    return aps


def _split_terse(line: str) -> list[str]:
    """Split an ``nmcli -t`` line on unescaped colons, unescaping ``\\:`` and ``\\\\``."""
    out: list[str] = []
    buf: list[str] = []
    it = iter(line)
    for ch in it:
        if ch == "\\":
            buf.append(next(it, ""))
        elif ch == ":":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


def parse_nmcli(text: str) -> list[AccessPoint]:
    """Parse ``nmcli -t -f SSID,BSSID,CHAN,FREQ,SIGNAL dev wifi list``.

    nmcli reports signal as quality 0-100; it is converted to dBm as ``quality / 2 - 100``
    (the inverse of NetworkManager's own dBm-to-quality mapping).
    """
    aps: list[AccessPoint] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = _split_terse(line)
        if len(parts) < 5:
            continue
        ssid, bssid, chan, freq, signal = parts[:5]
        try:
            freq_mhz: int | None = int(freq.split()[0]) if freq else None
        except ValueError:
            freq_mhz = None
        aps.append(
            AccessPoint(
                bssid=bssid.lower(),
                ssid=ssid or None,
                rssi_dbm=int(signal) / 2 - 100 if signal.isdigit() else None,
                freq_mhz=freq_mhz,
                channel=int(chan) if chan.isdigit() else None,
            )
        )
    return aps
