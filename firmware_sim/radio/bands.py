"""The LTE and NR bands the simulator knows: downlink centre frequency, duplex mode, channel number.

Representative downlink centre frequencies of the bands used in Vietnam (3GPP TS 36.101 and
38.101-1 band tables); the channel numbers are one valid EARFCN / NR-ARFCN inside each band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True, slots=True)
class BandInfo:
    """One band: technology, 3GPP band number, downlink centre frequency, duplex, channel number."""

    tech: Literal["LTE", "NR"]
    number: int
    freq_mhz: float
    duplex: Literal["FDD", "TDD"]
    arfcn: int
    scs_khz: int


BANDS: Final[dict[str, BandInfo]] = {
    "B1": BandInfo("LTE", 1, 2140.0, "FDD", 300, 15),
    "B3": BandInfo("LTE", 3, 1842.5, "FDD", 1575, 15),
    "B7": BandInfo("LTE", 7, 2655.0, "FDD", 3100, 15),
    "B8": BandInfo("LTE", 8, 947.5, "FDD", 3625, 15),
    "B28": BandInfo("LTE", 28, 780.5, "FDD", 9460, 15),
    "B40": BandInfo("LTE", 40, 2350.0, "TDD", 39150, 15),
    "n1": BandInfo("NR", 1, 2140.0, "FDD", 428000, 15),
    "n28": BandInfo("NR", 28, 780.5, "FDD", 156100, 15),
    "n41": BandInfo("NR", 41, 2593.0, "TDD", 518598, 30),
    "n78": BandInfo("NR", 78, 3500.0, "TDD", 633334, 30),
}
"""Band name (``B`` + LTE band number, ``n`` + NR band number) -> :class:`BandInfo`."""
