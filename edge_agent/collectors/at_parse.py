"""Pure parsers of modem AT answers (3GPP TS 27.007 and Quectel RG500Q/RM500Q extensions).

Every function takes the text lines of one answer (without the final ``OK``) and returns plain
values; none touches a socket, so they are tested table-style on captured answers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime

from contract.readings import Technology


@dataclass(frozen=True, slots=True)
class ServingCell:
    """The serving cell from ``AT+QENG="servingcell"``; ``tech`` None means no service (SEARCH)."""

    tech: Technology | None
    mcc: int | None = None
    mnc: int | None = None
    cell_id: int | None = None
    pci: int | None = None
    earfcn: int | None = None
    band: str | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None
    rssi_dbm: float | None = None


@dataclass(frozen=True, slots=True)
class Operator:
    """The registered operator from ``AT+COPS?``."""

    name: str
    tech: Technology | None


@dataclass(frozen=True, slots=True)
class Fix:
    """A GNSS fix from ``AT+QGPSLOC=2``."""

    lat: float
    lon: float
    alt_m: float | None
    ts_ms: int | None
    satellites: int | None


@dataclass(frozen=True, slots=True)
class Cesq:
    """Signal from ``AT+CESQ`` (LTE rsrq/rsrp, NR ss_* when present), mapped to dB/dBm."""

    rsrq_db: float | None
    rsrp_dbm: float | None
    ss_rsrq_db: float | None = None
    ss_rsrp_dbm: float | None = None
    ss_sinr_db: float | None = None


ACT_TECH: dict[int, Technology] = {
    0: "GSM",
    2: "UMTS",
    3: "GSM",
    4: "UMTS",
    5: "UMTS",
    6: "UMTS",
    7: "LTE",
    9: "LTE",
    10: "LTE",
    11: "NR",
    12: "NR",
    13: "NR",
}
"""27.007 ``<AcT>`` codes to contract technologies (7 E-UTRAN, 11/12 NR, 13 E-UTRA-NR dual)."""


def _fields(line: str, prefix: str) -> list[str] | None:
    for raw in (line.strip(),):
        if raw.startswith(prefix):
            return next(csv.reader([raw[len(prefix) :].strip()], skipinitialspace=True))
    return None


def _find(lines: list[str], prefix: str) -> list[str] | None:
    for line in lines:
        f = _fields(line, prefix)
        if f is not None:
            return f
    return None


def _int(text: str, base: int = 10) -> int | None:
    text = text.strip()
    if not text or text == "-":
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _clamp(value: float | None, lo: float, hi: float) -> float | None:
    if value is None:
        return None
    return min(hi, max(lo, value))


def parse_qeng(lines: list[str]) -> ServingCell | None:
    """Parse ``+QENG: "servingcell",...`` (LTE or NR5G-SA). None when the answer has no such line.

    Raises:
        ValueError: a servingcell line in an unknown format.
    """
    f = _find(lines, "+QENG:")
    if f is None or not f or f[0] != "servingcell":
        return None
    if len(f) < 3 or f[1] == "SEARCH" or (f[1] == "LIMSRV" and len(f) < 4):
        return ServingCell(tech=None)
    mode = f[2]
    if mode == "LTE" and len(f) >= 17:
        # state, "LTE", duplex, MCC, MNC, cellID, PCI, EARFCN, band, UL bw, DL bw, TAC, RSRP, RSRQ, RSSI, SINR
        band = _int(f[9])
        return ServingCell(
            tech="LTE",
            mcc=_int(f[4]),
            mnc=_int(f[5]),
            cell_id=_int(f[6], 16),
            pci=_int(f[7]),
            earfcn=_int(f[8]),
            band=f"B{band}" if band is not None else None,
            rsrp_dbm=_clamp(_int(f[13]), -156, -31),
            rsrq_db=_clamp(_int(f[14]), -43, 20),
            rssi_dbm=_clamp(_int(f[15]), -120, -20),
            sinr_db=_clamp(_int(f[16]), -23, 40),
        )
    if mode == "NR5G-SA" and len(f) >= 15:
        # state, "NR5G-SA", duplex, MCC, MNC, cellID, PCI, TAC, ARFCN, band, NR DL bw, RSRP, RSRQ, SINR
        band = _int(f[10])
        return ServingCell(
            tech="NR",
            mcc=_int(f[4]),
            mnc=_int(f[5]),
            cell_id=_int(f[6], 16),
            pci=_int(f[7]),
            earfcn=_int(f[9]),
            band=f"n{band}" if band is not None else None,
            rsrp_dbm=_clamp(_int(f[12]), -156, -31),
            rsrq_db=_clamp(_int(f[13]), -43, 20),
            sinr_db=_clamp(_int(f[14]), -23, 40),
        )
    raise ValueError(f"unknown +QENG servingcell format: {','.join(f)[:120]}")


def parse_cops(lines: list[str]) -> Operator | None:
    """Parse ``+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]``; None when not registered."""
    f = _find(lines, "+COPS:")
    if f is None or len(f) < 3 or not f[2]:
        return None
    act = _int(f[3]) if len(f) > 3 else None
    return Operator(name=f[2], tech=ACT_TECH.get(act) if act is not None else None)


def parse_csq(lines: list[str]) -> float | None:
    """``+CSQ: <rssi>,<ber>`` to RSSI in dBm (27.007: 0 -> -113 dBm, 31 -> -51 dBm, 99 unknown)."""
    f = _find(lines, "+CSQ:")
    if f is None or not f:
        return None
    n = _int(f[0])
    if n is None or n == 99 or not 0 <= n <= 31:
        return None
    return float(-113 + 2 * n)


def parse_cesq(lines: list[str]) -> Cesq | None:
    """``+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp[,ss_rsrq,ss_rsrp,ss_sinr]`` to dB/dBm (lower bounds).

    27.007: rsrq 0..34 -> -20 + n/2 dB; rsrp 0..97 -> -141 + n dBm; NR ss_rsrq 0..127 ->
    -43.5 + n/2 dB; ss_rsrp 0..127 -> -157 + n dBm; ss_sinr 0..127 -> -23.5 + n/2 dB;
    255 is "not known". Values are clamped to the contract's ranges.
    """
    f = _find(lines, "+CESQ:")
    if f is None or len(f) < 6:
        return None
    vals = [_int(x) for x in f]

    def mapped(i: int, top: int, fn: float, step: float, lo: float, hi: float) -> float | None:
        if i >= len(vals):
            return None
        n = vals[i]
        if n is None or n == 255 or not 0 <= n <= top:
            return None
        return _clamp(fn + n * step, lo, hi)

    return Cesq(
        rsrq_db=mapped(4, 34, -20.0, 0.5, -43, 20),
        rsrp_dbm=mapped(5, 97, -141.0, 1.0, -156, -31),
        ss_rsrq_db=mapped(6, 127, -43.5, 0.5, -43, 20),
        ss_rsrp_dbm=mapped(7, 127, -157.0, 1.0, -156, -31),
        ss_sinr_db=mapped(8, 127, -23.5, 0.5, -23, 40),
    )


def parse_qgpsloc(lines: list[str]) -> Fix | None:
    """``+QGPSLOC: hhmmss.sss,lat,lon,hdop,alt,fix,cog,spkm,spkn,ddmmyy,nsat`` (mode 2: degrees).

    None when there is no such line (``+CME ERROR: 516`` = no fix) or the position is 0,0.
    """
    f = _find(lines, "+QGPSLOC:")
    if f is None or len(f) < 11:
        return None
    try:
        lat, lon = float(f[1]), float(f[2])
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0.0 and lon == 0.0):
        return None
    try:
        alt: float | None = float(f[4])
    except ValueError:
        alt = None
    ts_ms: int | None = None
    try:
        t = datetime.strptime(f"{f[9]} {f[0].split('.')[0]}", "%d%m%y %H%M%S").replace(tzinfo=UTC)
        ts_ms = int(t.timestamp() * 1000)
    except ValueError:
        ts_ms = None
    return Fix(lat=lat, lon=lon, alt_m=alt, ts_ms=ts_ms, satellites=_int(f[10]))


def is_final(line: str) -> bool:
    """Whether a line ends an AT answer (V.250 final result codes)."""
    s = line.strip()
    return s in ("OK", "ERROR", "NO CARRIER") or s.startswith(("+CME ERROR", "+CMS ERROR"))
