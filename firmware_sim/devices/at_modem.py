"""A cellular modem answering 3GPP TS 27.007 and Quectel AT commands over a raw TCP socket.

:class:`AtSession` is the pure part (command line in, response text out, given a
:class:`ModemSnapshot`); :class:`AtModemServer` only moves bytes. V.250 framing: a command ends
with ``\\r`` (``\\r\\n`` accepted), echo is off by default (``ATE1`` turns it on), information
lines are ``\\r\\n<line>\\r\\n``, the result code is ``\\r\\nOK\\r\\n``, ``\\r\\nERROR\\r\\n`` or
``\\r\\n+CME ERROR: <n>\\r\\n``. The mappings of dBm/dB values to 27.007 codes are documented in
``docs/firmware-sim.md`` and implemented by the ``*_code`` functions below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from firmware_sim.errors import DeviceStartError
from firmware_sim.world import Link

CME_NO_FIX: Final = 516
MAX_LINE: Final = 1024
_LTE_BW_CODE: Final[dict[int, int]] = {1: 0, 3: 1, 5: 2, 10: 3, 15: 4, 20: 5}
_NR_BW_CODE: Final[dict[int, int]] = {
    5: 0, 10: 1, 15: 2, 20: 3, 25: 4, 30: 5, 40: 6, 50: 7, 60: 8, 70: 9, 80: 10, 90: 11, 100: 12, 200: 13, 400: 14,
}  # fmt: skip
_SCS_CODE: Final[dict[int, int]] = {15: 0, 30: 1, 60: 2, 120: 3}
QRXLEVMIN_DBM: Final = -124
_log = logging.getLogger(__name__)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def csq_rssi_code(rssi_dbm: float) -> int:
    """27.007 ``+CSQ`` <rssi>: 0 is -113 dBm or less, 1..30 in 2 dB steps, 31 is -51 dBm or more."""
    return _clamp(math.floor((rssi_dbm + 113.0) / 2.0 + 0.5), 0, 31)


def lte_rsrp_code(rsrp_dbm: float) -> int:
    """``+CESQ`` <rsrp>: 0 below -140 dBm, n for -141+n <= RSRP < -140+n, 97 at -44 dBm or more."""
    return _clamp(math.floor(rsrp_dbm + 140.0) + 1, 0, 97)


def lte_rsrq_code(rsrq_db: float) -> int:
    """``+CESQ`` <rsrq>: 0 below -19.5 dB, then 0.5 dB steps, 34 at -3 dB or more."""
    return _clamp(math.floor((rsrq_db + 19.5) * 2.0) + 1, 0, 34)


def nr_rsrp_code(rsrp_dbm: float) -> int:
    """``+CESQ`` <ss_rsrp>: 0 below -156 dBm, 1 dB steps, 127 at -31 dBm or more."""
    return _clamp(math.floor(rsrp_dbm + 156.0) + 1, 0, 127)


def nr_rsrq_code(rsrq_db: float) -> int:
    """``+CESQ`` <ss_rsrq>: 0 below -43 dB, 0.5 dB steps, 127 at 20 dB or more."""
    return _clamp(math.floor((rsrq_db + 43.0) * 2.0) + 1, 0, 127)


def nr_sinr_code(sinr_db: float) -> int:
    """``+CESQ`` <ss_sinr>: 0 below -23 dB, 0.5 dB steps, 127 at 40 dB or more."""
    return _clamp(math.floor((sinr_db + 23.0) * 2.0) + 1, 0, 127)


@dataclass(frozen=True, slots=True, kw_only=True)
class GnssFix:
    """A GNSS position fix."""

    lat: float
    lon: float
    alt_m: float
    course_deg: float
    speed_kmh: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemSnapshot:
    """Everything a modem reports at one instant."""

    link: Link
    operator_name: str
    now_ms: int
    fix: GnssFix | None


class AtSession:
    """The command interpreter of one connection (echo state lives here)."""

    MANUFACTURER: Final = "Quectel"
    MODEL: Final = "RM500Q-GL"
    REVISION: Final = "RM500QGLABR13A02M4G-PWSIM"

    def __init__(self, snapshot: Callable[[], ModemSnapshot]) -> None:
        self.echo = False
        self._snapshot = snapshot

    def handle(self, line: str) -> str:
        """The full response to one command line (without its terminator), echo included."""
        text = line.strip()
        prefix = text + "\r" if self.echo else ""
        if not text:
            return prefix
        try:
            lines = self._dispatch(text)
        except _CmeError as exc:
            return prefix + f"\r\n+CME ERROR: {exc.code}\r\n"
        if lines is None:
            return prefix + "\r\nERROR\r\n"
        return prefix + "".join(f"\r\n{ln}\r\n" for ln in lines) + "\r\nOK\r\n"

    def _dispatch(self, text: str) -> list[str] | None:
        upper = text.upper()
        if not upper.startswith("AT"):
            return None
        cmd = upper[2:]
        if cmd == "":
            return []
        if cmd in ("E0", "E", "E1"):
            self.echo = cmd == "E1"
            return []
        if cmd in ("I", "I0"):
            return [self.MANUFACTURER, self.MODEL, f"Revision: {self.REVISION}"]
        if cmd == "+CGMI":
            return [self.MANUFACTURER]
        if cmd == "+CGMM":
            return [self.MODEL]
        if cmd == "+CGMR":
            return [self.REVISION]
        if cmd == "+CSQ":
            return [self._csq()]
        if cmd == "+CESQ":
            return [self._cesq()]
        if cmd == "+COPS?":
            return [self._cops()]
        if cmd.replace(" ", "") == '+QENG="SERVINGCELL"':
            return [self._qeng()]
        if cmd in ("+QGPSLOC=2", "+QGPSLOC?"):
            return [self._qgpsloc()]
        return None

    def _csq(self) -> str:
        link = self._snapshot().link
        if link.cell is None:
            return "+CSQ: 99,99"
        return f"+CSQ: {csq_rssi_code(link.rssi_dbm)},99"

    def _cesq(self) -> str:
        link = self._snapshot().link
        if link.cell is None:
            return "+CESQ: 99,99,255,255,255,255"
        if link.tech == "NR":
            return (
                f"+CESQ: 99,99,255,255,255,255,{nr_rsrq_code(link.rsrq_db)},"
                f"{nr_rsrp_code(link.rsrp_dbm)},{nr_sinr_code(link.sinr_db)}"
            )
        return f"+CESQ: 99,99,255,255,{lte_rsrq_code(link.rsrq_db)},{lte_rsrp_code(link.rsrp_dbm)}"

    def _cops(self) -> str:
        snap = self._snapshot()
        if snap.link.cell is None:
            return "+COPS: 0"
        act = 11 if snap.link.tech == "NR" else 7
        return f'+COPS: 0,0,"{snap.operator_name}",{act}'

    def _qeng(self) -> str:
        link = self._snapshot().link
        c = link.cell
        if c is None:
            return '+QENG: "servingcell","SEARCH"'
        rsrp = round(link.rsrp_dbm)
        rsrq = round(link.rsrq_db)
        sinr = round(link.sinr_db)
        srxlev = max(0, rsrp - QRXLEVMIN_DBM)
        if link.tech == "NR":
            return (
                f'+QENG: "servingcell","NOCONN","NR5G-SA","{c.duplex}",{c.mcc},{c.mnc:02d},{c.cell_id:X},'
                f"{c.pci},{c.tac:X},{c.arfcn},{c.band_number},{_NR_BW_CODE.get(c.bandwidth_mhz, 12)},"
                f"{rsrp},{rsrq},{sinr},{_SCS_CODE.get(c.scs_khz, 1)},{srxlev}"
            )
        bw = _LTE_BW_CODE.get(c.bandwidth_mhz, 5)
        cqi = _clamp(round((link.sinr_db + 6.0) / 2.0), 1, 15)
        return (
            f'+QENG: "servingcell","NOCONN","LTE","{c.duplex}",{c.mcc},{c.mnc:02d},{c.cell_id:X},{c.pci},'
            f"{c.arfcn},{c.band_number},{bw},{bw},{c.tac:X},{rsrp},{rsrq},{round(link.rssi_dbm)},{sinr},"
            f"{cqi},-32768,{srxlev}"
        )

    def _qgpsloc(self) -> str:
        snap = self._snapshot()
        fix = snap.fix
        if fix is None:
            raise _CmeError(CME_NO_FIX)
        t = time.gmtime(snap.now_ms / 1000.0)
        utc = time.strftime("%H%M%S", t) + f".{snap.now_ms % 1000:03d}"
        date = time.strftime("%d%m%y", t)
        knots = fix.speed_kmh / 1.852
        return (
            f"+QGPSLOC: {utc},{fix.lat:.5f},{fix.lon:.5f},0.9,{fix.alt_m:.1f},3,"
            f"{fix.course_deg:.2f},{fix.speed_kmh:.1f},{knots:.1f},{date},09"
        )


class _CmeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class AtModemServer:
    """The TCP side: one listening port, one :class:`AtSession` per connection."""

    def __init__(self, *, name: str, snapshot: Callable[[], ModemSnapshot], host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.port = 0
        self._snapshot = snapshot
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        """Start listening; return the bound port.

        Raises:
            DeviceStartError: the address cannot be bound.
        """
        try:
            self._server = await asyncio.start_server(self._handle, self.host, port)
        except OSError as exc:
            raise DeviceStartError(f"modem {self.name}: cannot listen on {self.host}:{port}: {exc}") from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = AtSession(self._snapshot)
        buf = b""
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                buf += data
                while b"\r" in buf or b"\n" in buf:
                    cut = min(i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0)
                    raw, buf = buf[:cut], buf[cut + 1 :]
                    line = raw.decode("ascii", errors="replace").strip()
                    if line:
                        writer.write(session.handle(line).encode("ascii", errors="replace"))
                if len(buf) > MAX_LINE:
                    buf = b""
                    writer.write(b"\r\nERROR\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Shutdown: end quietly (asyncio's stream callback reports a cancelled handler as an error).
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def aclose(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2.0)
            await self._server.wait_closed()
            self._server = None
