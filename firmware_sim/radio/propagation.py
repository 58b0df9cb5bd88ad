"""Path loss, antenna pattern and spatially correlated shadowing: pure numpy functions.

Models (documented in ``docs/firmware-sim.md``):

* **Okumura-Hata / COST-231 Hata** (f < 1500 MHz: Hata urban; 1500-2000 MHz: COST-231 Hata,
  ``C = 0`` dB medium city, 3 dB metropolitan; ``suburban`` subtracts Hata's suburban correction
  ``2 (log10(f/28))^2 + 5.4`` dB from the medium-city loss). Defined for 1-20 km, base 30-200 m, mobile 1-10 m;
  below 1 km it is extrapolated and never allowed below free space. Used for bands up to 2.7 GHz
  (above 2 GHz it is an extrapolation, stated here on purpose).
* **Log-distance**: free-space loss at the reference distance ``d0`` plus ``10 n log10(d/d0)``.
  Used for the 3.5 GHz NR bands, where Hata is not defined.
* **Sector antenna**: the horizontal pattern of 3GPP TR 36.814 Table A.2.1.1-2,
  ``A(θ) = -min(12 (θ/θ3dB)^2, Am)`` with ``Am = 25`` dB.
* **Shadowing**: a seeded Gaussian random field on a regular grid (white noise smoothed by a
  Gaussian kernel, unit variance, scaled to ``sigma_db``), sampled by bilinear interpolation, so
  points a few metres apart see almost the same shadowing and points beyond the correlation
  distance are nearly independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

City = Literal["medium", "metropolitan", "suburban"]

ANTENNA_MAX_ATTENUATION_DB: Final = 25.0
HATA_MAX_FREQ_MHZ: Final = 2700.0
"""Carriers above this use the log-distance model."""


def free_space_path_loss_db(distance_m: npt.ArrayLike, freq_mhz: npt.ArrayLike) -> FloatArray:
    """Free-space path loss (Friis): ``20 log10(d_km) + 20 log10(f_MHz) + 32.44``."""
    d_km = np.maximum(np.asarray(distance_m, dtype=np.float64), 1e-3) / 1000.0
    f = np.asarray(freq_mhz, dtype=np.float64)
    return np.asarray(20.0 * np.log10(d_km) + 20.0 * np.log10(f) + 32.44, dtype=np.float64)


def _mobile_height_correction(f_mhz: FloatArray, hm_m: float, city: City) -> FloatArray:
    if city == "metropolitan":
        # Large-city correction for f >= 300 MHz.
        return np.full_like(f_mhz, 3.2 * np.log10(11.75 * hm_m) ** 2 - 4.97)
    lf = np.log10(f_mhz)
    return np.asarray((1.1 * lf - 0.7) * hm_m - (1.56 * lf - 0.8), dtype=np.float64)


def hata_path_loss_db(
    distance_m: npt.ArrayLike,
    freq_mhz: npt.ArrayLike,
    *,
    base_height_m: npt.ArrayLike,
    mobile_height_m: float = 1.5,
    city: City = "medium",
) -> FloatArray:
    """Okumura-Hata (below 1500 MHz) or COST-231 Hata (from 1500 MHz) urban path loss, dB.

    Args:
        distance_m: horizontal distance(s) base to mobile.
        freq_mhz: carrier frequency(ies).
        base_height_m: base station antenna height(s) above ground.
        mobile_height_m: mobile antenna height.
        city: ``medium`` (medium-sized city, C = 0 dB), ``metropolitan`` (C = 3 dB) or
            ``suburban`` (medium city minus Hata's suburban correction).
    """
    d = np.maximum(np.asarray(distance_m, dtype=np.float64), 1.0)
    f = np.broadcast_to(np.asarray(freq_mhz, dtype=np.float64), d.shape)
    hb = np.asarray(base_height_m, dtype=np.float64)
    lf = np.log10(f)
    lhb = np.log10(hb)
    a_hm = _mobile_height_correction(np.asarray(f), mobile_height_m, city)
    slope = (44.9 - 6.55 * lhb) * np.log10(d / 1000.0)
    hata = 69.55 + 26.16 * lf - 13.82 * lhb - a_hm + slope
    cost = 46.3 + 33.9 * lf - 13.82 * lhb - a_hm + slope + (3.0 if city == "metropolitan" else 0.0)
    loss = np.where(f < 1500.0, hata, cost)
    if city == "suburban":
        loss = loss - 2.0 * np.log10(f / 28.0) ** 2 - 5.4
    return np.asarray(np.maximum(loss, free_space_path_loss_db(d, f)), dtype=np.float64)


def log_distance_path_loss_db(
    distance_m: npt.ArrayLike,
    freq_mhz: npt.ArrayLike,
    *,
    exponent: float,
    ref_distance_m: float = 1.0,
) -> FloatArray:
    """Log-distance path loss: ``FSPL(d0, f) + 10 n log10(d / d0)``, with ``d`` at least ``d0``."""
    d = np.maximum(np.asarray(distance_m, dtype=np.float64), ref_distance_m)
    return np.asarray(
        free_space_path_loss_db(ref_distance_m, freq_mhz) + 10.0 * exponent * np.log10(d / ref_distance_m),
        dtype=np.float64,
    )


def antenna_gain_db(
    bearing_deg: npt.ArrayLike, azimuth_deg: npt.ArrayLike, beamwidth_deg: npt.ArrayLike
) -> FloatArray:
    """Relative horizontal gain (<= 0 dB) towards ``bearing_deg``; a NaN azimuth is an omni antenna."""
    az = np.asarray(azimuth_deg, dtype=np.float64)
    diff = (np.asarray(bearing_deg, dtype=np.float64) - az + 180.0) % 360.0 - 180.0
    att = np.minimum(
        12.0 * (diff / np.asarray(beamwidth_deg, dtype=np.float64)) ** 2, ANTENNA_MAX_ATTENUATION_DB
    )
    return np.asarray(np.where(np.isnan(az), 0.0, -att), dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalProjection:
    """Equirectangular metres around an origin: accurate to well under 1 % across 50 km."""

    lat0: float
    lon0: float

    def to_xy(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """East (x) and north (y) metres of the given points from the origin."""
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        x = (lon_a - self.lon0) * 111_320.0 * np.cos(np.radians(self.lat0))
        y = (lat_a - self.lat0) * 110_574.0
        return x, y

    def to_latlon(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Inverse of :meth:`to_xy`."""
        lat = self.lat0 + np.asarray(y, dtype=np.float64) / 110_574.0
        lon = self.lon0 + np.asarray(x, dtype=np.float64) / (111_320.0 * np.cos(np.radians(self.lat0)))
        return lat, lon


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowField:
    """A correlated log-normal shadowing field (dB) on a grid, sampled by bilinear interpolation."""

    x0_m: float
    y0_m: float
    grid_m: float
    values_db: FloatArray  # shape (ny, nx)

    @classmethod
    def generate(
        cls,
        *,
        seed: int | list[int],
        x_range_m: tuple[float, float],
        y_range_m: tuple[float, float],
        grid_m: float,
        sigma_db: float,
        corr_m: float,
    ) -> ShadowField:
        """A seeded field covering the given box. Same arguments, same field."""
        nx = int(np.ceil((x_range_m[1] - x_range_m[0]) / grid_m)) + 2
        ny = int(np.ceil((y_range_m[1] - y_range_m[0]) / grid_m)) + 2
        s = corr_m / grid_m
        # Pad so the FFT's wrap-around does not correlate opposite edges.
        pad = int(np.ceil(3 * s))
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((ny + 2 * pad, nx + 2 * pad))
        ky = np.fft.fftfreq(noise.shape[0])[:, None]
        kx = np.fft.rfftfreq(noise.shape[1])[None, :]
        kernel = np.exp(-2.0 * (np.pi * s) ** 2 * (kx**2 + ky**2))
        smooth = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=noise.shape)[pad : pad + ny, pad : pad + nx]
        std = float(smooth.std())
        values = smooth / std * sigma_db if std > 0 and sigma_db > 0 else np.zeros_like(smooth)
        return cls(x0_m=x_range_m[0], y0_m=y_range_m[0], grid_m=grid_m, values_db=values)

    def sample(self, x_m: npt.ArrayLike, y_m: npt.ArrayLike) -> FloatArray:
        """Shadowing in dB at the given points (clamped to the grid's edge outside it)."""
        ny, nx = self.values_db.shape
        gx = np.clip((np.asarray(x_m, dtype=np.float64) - self.x0_m) / self.grid_m, 0, nx - 1.000001)
        gy = np.clip((np.asarray(y_m, dtype=np.float64) - self.y0_m) / self.grid_m, 0, ny - 1.000001)
        ix = gx.astype(np.int64)
        iy = gy.astype(np.int64)
        fx = gx - ix
        fy = gy - iy
        v = self.values_db
        top = v[iy, ix] * (1 - fx) + v[iy, ix + 1] * fx
        bottom = v[iy + 1, ix] * (1 - fx) + v[iy + 1, ix + 1] * fx
        return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float64)


def points_in_polygon(x: FloatArray, y: FloatArray, px: FloatArray, py: FloatArray) -> npt.NDArray[np.bool_]:
    """Even-odd rule: which points (x, y) lie inside the polygon with vertices (px, py)."""
    inside = np.zeros(np.shape(x), dtype=bool)
    n = len(px)
    for i in range(n):
        x1, y1, x2, y2 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside
