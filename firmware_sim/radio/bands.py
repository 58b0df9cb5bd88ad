"""The LTE and NR bands the simulator knows: downlink centre frequency, duplex mode, channel number.

Representative downlink centre frequencies of the bands used in Vietnam (3GPP TS 36.101 and
38.101-1 band tables); the channel numbers are one valid EARFCN / NR-ARFCN inside each band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class BandInfo:
    """One band: technology, 3GPP band number, downlink centre frequency, duplex, channel number."""

    tech: Literal["LTE", "NR"]
    number: int
    freq_mhz: float
    duplex: Literal["FDD", "TDD"]
    arfcn: int
    scs_khz: int


BANDS: Final[dict[str, BandInfo]] = {
    "B1": BandInfo(tech="LTE", number=1, freq_mhz=2140.0, duplex="FDD", arfcn=300, scs_khz=15),
    "B3": BandInfo(tech="LTE", number=3, freq_mhz=1842.5, duplex="FDD", arfcn=1575, scs_khz=15),
    "B7": BandInfo(tech="LTE", number=7, freq_mhz=2655.0, duplex="FDD", arfcn=3100, scs_khz=15),
    "B8": BandInfo(tech="LTE", number=8, freq_mhz=947.5, duplex="FDD", arfcn=3625, scs_khz=15),
    "B28": BandInfo(tech="LTE", number=28, freq_mhz=780.5, duplex="FDD", arfcn=9460, scs_khz=15),
    "B40": BandInfo(tech="LTE", number=40, freq_mhz=2350.0, duplex="TDD", arfcn=39150, scs_khz=15),
    "n1": BandInfo(tech="NR", number=1, freq_mhz=2140.0, duplex="FDD", arfcn=428000, scs_khz=15),
    "n28": BandInfo(tech="NR", number=28, freq_mhz=780.5, duplex="FDD", arfcn=156100, scs_khz=15),
    "n41": BandInfo(tech="NR", number=41, freq_mhz=2593.0, duplex="TDD", arfcn=518598, scs_khz=30),
    "n78": BandInfo(tech="NR", number=78, freq_mhz=3500.0, duplex="TDD", arfcn=633334, scs_khz=30),
}
"""Band name (``B`` + LTE band number, ``n`` + NR band number) -> :class:`BandInfo`."""
