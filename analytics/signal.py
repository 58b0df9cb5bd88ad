"""Signal classes from a versioned threshold profile, vectorised over numpy arrays.

Raw values are stored; classes are computed at query time, so a map can be re-classed when the
profile changes. The simulator's ground truth uses the same functions, so the platform's dead-zone
detection is scored against the same definition of "dead".

Default mobile profile (``parkwatch-2026.2``), for LTE RSRP and NR SS-RSRP in dBm. The map
classes are coverage classes (RSRP only):

============  =====================
class         RSRP
============  =====================
excellent     >= -80
good          -90 .. -80
fair          -100 .. -90
poor          -110 .. -100
none          < -110
============  =====================

Three layers answer three questions (``docs/coverage.md``):

* **coverage** -- is there signal: a *coverage hole* (dead zone) is where RSRP is at or below
  :attr:`TechThresholds.hole_rsrp_dbm`, -115 dBm for LTE and NR. This is the 3GPP notion of a
  coverage hole -- "an area where the pilot signal power (RSRP) is below the threshold which is
  required for successful operation" (TS 36.300 §22.3 / TS 37.320 §5.1.1, MDT M1 reports of
  RSRP against a configured threshold) -- with the threshold that operators' coverage
  verification and MDT configuration use for outdoor LTE edge of service (-115 dBm: 3GPP's
  outdoor RSRP at cell edge for 10 MHz LTE is about -120 .. -115 dBm; Ericsson/Nokia drive-test
  guidance marks < -115 dBm "no coverage / cell edge"). UMTS RSCP and GSM RxLev use -105 dBm.
  ``poor`` (-110 .. -100) is weak but serviceable: a map class, not a dead zone.
* **quality** -- is it usable: SINR below :attr:`TechThresholds.sinr_floor_db` (0 dB, where
  LTE/NR link adaptation falls to its most robust MCS) with RSRP above the hole threshold is an
  *interference zone*: an optimisation job (tilt, PCI, neighbours), never a dead zone.
* **service** -- ``no_service`` readings (RSRP -140, the 3GPP reporting floor) count below every
  threshold; a hole made mostly of them has the cause ``no_service``.

NR uses the same bands for SS-RSRP (3GPP TS 38.133 reports SS-RSRP on the LTE RSRP scale,
and operators' NR drive-test guides use the same -80/-90/-100/-110 steps); UMTS (RSCP) and
GSM (RxLev) are 5 dB stricter. Wi-Fi RSSI has its own bands (:data:`WIFI_RSSI_LOWER_DBM`) and
broadband lines are classed against service targets (:class:`BroadbandTargets`).

Sources of the class bands: the RSRP ranges used by operators' and vendors' field guides (e.g.
the LTE RSRP ranges in Ericsson/Nokia drive-test guidance). A lower bound is inclusive:
-80.0 dBm is ``excellent``, -110.0 dBm is ``poor``; the hole threshold is inclusive too
(-115.0 dBm is a hole).
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
    """Lower bounds (dBm) of poor, fair, good and excellent; the coverage-hole threshold (dBm,
    inclusive); the SINR floor (dB) below which covered signal is an interference zone."""

    rsrp_lower_dbm: tuple[float, float, float, float] = (-110.0, -100.0, -90.0, -80.0)
    sinr_floor_db: float = 0.0
    hole_rsrp_dbm: float = -115.0

    def dead_threshold_dbm(self, max_class: str) -> float:
        """The RSRP at or below which a cell is dead: the hole threshold for ``none``, or (a user's
        wider choice) the upper bound of the class for ``poor``, ``fair`` or ``good``."""
        if max_class == "none":
            return self.hole_rsrp_dbm
        names = ("poor", "fair", "good")
        if max_class in names:
            return self.rsrp_lower_dbm[names.index(max_class) + 1]
        raise ValueError(f"max_class must be one of none, poor, fair, good; not {max_class!r}")


@dataclass(frozen=True, slots=True)
class SignalProfile:
    """A named, versioned set of thresholds per technology."""

    name: str = "parkwatch-2026.2"
    techs: dict[str, TechThresholds] = field(
        default_factory=lambda: {
            "LTE": TechThresholds(),
            "NR": TechThresholds(),
            "UMTS": TechThresholds(rsrp_lower_dbm=(-105.0, -95.0, -85.0, -75.0), hole_rsrp_dbm=-105.0),
            "GSM": TechThresholds(rsrp_lower_dbm=(-105.0, -95.0, -85.0, -75.0), hole_rsrp_dbm=-105.0),
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


WIFI_RSSI_LOWER_DBM: Final[tuple[float, float, float, float]] = (-80.0, -70.0, -60.0, -50.0)
"""Wi-Fi RSSI lower bounds (dBm) of poor, fair, good and excellent.

The common vendor guidance (e.g. Cisco and Aruba design guides): -50 dBm and better is
excellent, -60 good for data, -70 the minimum for reliable data and voice, below -80 unusable.
"""


def classify_wifi(rssi_dbm: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Class index per Wi-Fi RSSI sample (same scale as :func:`classify`); NaN gives :data:`UNKNOWN`."""
    rssi = np.asarray(rssi_dbm, dtype=np.float64)
    cls = np.searchsorted(np.asarray(WIFI_RSSI_LOWER_DBM), rssi, side="right").astype(np.int8)
    cls[np.isnan(rssi)] = UNKNOWN
    return cls


@dataclass(frozen=True, slots=True)
class BroadbandTargets:
    """Service targets of a fixed broadband line.

    Defaults follow the national fixed-broadband target of 100 Mbps down / 20 Mbps up and the
    latency and loss a video call needs (p95 latency 100 ms, loss 1 %).
    """

    down_mbps: float = 100.0
    up_mbps: float = 20.0
    latency_p95_ms: float = 100.0
    loss_pct: float = 1.0


BROADBAND_CLASSES: Final[tuple[str, ...]] = ("fails", "partial", "meets")
"""Broadband class index → name: ``meets`` every target, ``partial`` misses one, ``fails`` more."""


def classify_broadband(
    *,
    down_mbps: npt.ArrayLike,
    up_mbps: npt.ArrayLike,
    latency_p95_ms: npt.ArrayLike,
    loss_pct: npt.ArrayLike,
    targets: BroadbandTargets = BroadbandTargets(),
) -> npt.NDArray[np.int8]:
    """Broadband class per row (see :data:`BROADBAND_CLASSES`); -1 when nothing was measured.

    A metric that was not measured (NaN) neither meets nor misses its target.
    """
    down = np.asarray(down_mbps, dtype=np.float64)
    up = np.asarray(up_mbps, dtype=np.float64)
    lat = np.asarray(latency_p95_ms, dtype=np.float64)
    loss = np.asarray(loss_pct, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        misses = (
            (down < targets.down_mbps).astype(np.int8)
            + (up < targets.up_mbps)
            + (lat > targets.latency_p95_ms)
            + (loss > targets.loss_pct)
        )
    measured = ~(np.isnan(down) & np.isnan(up) & np.isnan(lat) & np.isnan(loss))
    cls = np.where(misses == 0, 2, np.where(misses == 1, 1, 0)).astype(np.int8)
    cls[~measured] = UNKNOWN
    return cls
