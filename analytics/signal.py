"""Signal classes from a versioned threshold profile, vectorised over numpy arrays.

Raw values are stored; classes are computed at query time, so a map can be re-classed when the
profile changes. The simulator's ground truth uses the same functions, so the platform's dead-zone
detection is scored against the same definition of "dead".

Default mobile profile (``parkwatch-2026.1``), for LTE RSRP and NR SS-RSRP in dBm:

============  =====================  ===============================
class         RSRP                   notes
============  =====================  ===============================
excellent     >= -80
good          -90 .. -80
fair          -100 .. -90
poor          -110 .. -100
none          < -110                 or SINR < 0 dB (no usable service)
============  =====================  ===============================

Sources: the RSRP bands used by operators' and vendors' field guides (e.g. the LTE RSRP
ranges in Ericsson/Nokia drive-test guidance, and the ``-110 dBm`` edge-of-coverage figure
common to regulators' coverage obligations); the SINR floor of 0 dB is where LTE/NR link
adaptation falls to its most robust MCS and throughput collapses. A lower bound is inclusive:
-80.0 dBm is ``excellent``, -110.0 dBm is ``poor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

CLASS_NAMES: Final[tuple[str, ...]] = ("none", "poor", "fair", "good", "excellent")
"""Class index → name. Higher is better; -1 means unknown (no RSRP)."""
CLASS_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(CLASS_NAMES)}
UNKNOWN: Final = -1


@dataclass(frozen=True, slots=True)
class TechThresholds:
    """Lower bounds (dBm) of poor, fair, good and excellent, and the SINR floor of service (dB)."""

    rsrp_lower_dbm: tuple[float, float, float, float] = (-110.0, -100.0, -90.0, -80.0)
    sinr_floor_db: float = 0.0


@dataclass(frozen=True, slots=True)
class SignalProfile:
    """A named, versioned set of thresholds per technology."""

    name: str = "parkwatch-2026.1"
    techs: dict[str, TechThresholds] = field(
        default_factory=lambda: {
            "LTE": TechThresholds(),
            "NR": TechThresholds(),
            "UMTS": TechThresholds(rsrp_lower_dbm=(-105.0, -95.0, -85.0, -75.0)),
            "GSM": TechThresholds(rsrp_lower_dbm=(-105.0, -95.0, -85.0, -75.0)),
        }
    )

    def thresholds(self, tech: str) -> TechThresholds:
        try:
            return self.techs[tech]
        except KeyError:
            raise ValueError(f"profile {self.name!r} has no thresholds for technology {tech!r}") from None


DEFAULT_PROFILE: Final = SignalProfile()


def classify(
    rsrp_dbm: npt.ArrayLike,
    sinr_db: npt.ArrayLike | None = None,
    *,
    tech: str = "LTE",
    profile: SignalProfile = DEFAULT_PROFILE,
) -> npt.NDArray[np.int8]:
    """Class index per sample (see :data:`CLASS_NAMES`); NaN RSRP gives :data:`UNKNOWN`.

    A NaN SINR means "not measured" and does not lower the class.
    """
    t = profile.thresholds(tech)
    rsrp = np.asarray(rsrp_dbm, dtype=np.float64)
    cls = np.searchsorted(np.asarray(t.rsrp_lower_dbm), rsrp, side="right").astype(np.int8)
    if sinr_db is not None:
        sinr = np.asarray(sinr_db, dtype=np.float64)
        cls = np.where(sinr < t.sinr_floor_db, np.int8(0), cls).astype(np.int8)
    cls[np.isnan(rsrp)] = UNKNOWN
    return cls


def class_name(index: int) -> str:
    """Name of a class index, ``unknown`` for -1."""
    return "unknown" if index == UNKNOWN else CLASS_NAMES[index]
