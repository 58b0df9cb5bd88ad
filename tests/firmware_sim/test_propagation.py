"""Propagation model against published reference values of its formulas."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.radio.propagation import (
    LocalProjection,
    ShadowField,
    antenna_gain_db,
    free_space_path_loss_db,
    hata_path_loss_db,
    log_distance_path_loss_db,
    points_in_polygon,
)


@pytest.mark.parametrize(
    ("distance_m", "freq_mhz", "expected_db"),
    [
        # Friis free-space loss, the textbook values: 2.4 GHz at 1 km is 100.0 dB, at 1 m 40.0 dB.
        (1000.0, 2400.0, 100.0),
        (1.0, 2400.0, 40.0),
        (1000.0, 900.0, 91.5),
    ],
)
def test_free_space_reference(distance_m: float, freq_mhz: float, expected_db: float) -> None:
    assert float(free_space_path_loss_db(distance_m, freq_mhz)) == pytest.approx(expected_db, abs=0.1)


@pytest.mark.parametrize(
    ("distance_m", "freq_mhz", "city", "expected_db"),
    [
        # Okumura-Hata urban, medium city, hb = 30 m, hm = 1.5 m: 126.4 dB at 1 km, 900 MHz,
        # slope 35.2 dB/decade (44.9 - 6.55 log10 30), the classic textbook figures.
        (1000.0, 900.0, "medium", 126.4),
        (10000.0, 900.0, "medium", 161.6),
        # COST-231 Hata, 1800 MHz, same heights: 136.2 dB at 1 km (C = 0), 139.2 dB metropolitan.
        (1000.0, 1800.0, "medium", 136.2),
        (1000.0, 1800.0, "metropolitan", 139.2),
        (5000.0, 1800.0, "medium", 160.8),
        # Hata suburban: urban minus 2 (log10(f/28))^2 + 5.4 = 9.9 dB at 900 MHz.
        (1000.0, 900.0, "suburban", 116.5),
    ],
)
def test_hata_reference(distance_m: float, freq_mhz: float, city: str, expected_db: float) -> None:
    loss = hata_path_loss_db(distance_m, freq_mhz, base_height_m=30.0, mobile_height_m=1.5, city=city)  # type: ignore[arg-type]
    assert float(loss) == pytest.approx(expected_db, abs=0.15)


def test_hata_never_below_free_space_at_short_range() -> None:
    d = np.array([5.0, 20.0, 100.0])
    assert np.all(hata_path_loss_db(d, 1800.0, base_height_m=30.0) >= free_space_path_loss_db(d, 1800.0))


def test_log_distance_reference() -> None:
    # At the reference distance the loss is free space; each decade adds 10 n dB.
    fspl_1m_3500 = float(free_space_path_loss_db(1.0, 3500.0))
    assert fspl_1m_3500 == pytest.approx(43.3, abs=0.1)
    assert float(log_distance_path_loss_db(1.0, 3500.0, exponent=3.0)) == pytest.approx(fspl_1m_3500)
    assert float(log_distance_path_loss_db(100.0, 3500.0, exponent=3.0)) == pytest.approx(fspl_1m_3500 + 60.0)
    assert float(log_distance_path_loss_db(0.2, 3500.0, exponent=3.0)) == pytest.approx(fspl_1m_3500)


def test_sector_pattern_3gpp() -> None:
    gains = antenna_gain_db([0.0, 32.5, 65.0, 180.0, 350.0], 0.0, 65.0)
    # 0 dB at boresight, -3 dB at half the 3 dB beamwidth, -12 dB at the beamwidth, floor -25 dB.
    assert gains == pytest.approx([0.0, -3.0, -12.0, -25.0, -12.0 * (10 / 65) ** 2])
    assert float(antenna_gain_db(123.0, float("nan"), 65.0)) == 0.0


def test_shadowing_is_seeded_and_spatially_correlated() -> None:
    kw = {
        "x_range_m": (0.0, 4000.0),
        "y_range_m": (0.0, 4000.0),
        "grid_m": 20.0,
        "sigma_db": 8.0,
        "corr_m": 100.0,
    }
    a = ShadowField.generate(seed=1, **kw)  # type: ignore[arg-type]
    b = ShadowField.generate(seed=1, **kw)  # type: ignore[arg-type]
    c = ShadowField.generate(seed=2, **kw)  # type: ignore[arg-type]
    assert np.array_equal(a.values_db, b.values_db)
    assert not np.array_equal(a.values_db, c.values_db)
    assert float(a.values_db.std()) == pytest.approx(8.0, rel=0.01)
    rng = np.random.default_rng(0)
    x = rng.uniform(500, 3500, 2000)
    y = rng.uniform(500, 3500, 2000)
    near = np.corrcoef(a.sample(x, y), a.sample(x + 10.0, y))[0, 1]
    far = np.corrcoef(a.sample(x, y), a.sample(x + 1000.0, y))[0, 1]
    assert near > 0.95
    assert abs(far) < 0.2


def test_projection_round_trip_and_polygon() -> None:
    p = LocalProjection(lat0=20.85, lon0=106.75)
    x, y = p.to_xy([20.86], [106.76])
    assert float(x[0]) == pytest.approx(1040.9, abs=2.0)
    assert float(y[0]) == pytest.approx(1105.7, abs=2.0)
    lat, lon = p.to_latlon(x, y)
    assert float(lat[0]) == pytest.approx(20.86) and float(lon[0]) == pytest.approx(106.76)
    sq = np.array([0.0, 10.0, 10.0, 0.0])
    inside = points_in_polygon(
        np.array([5.0, 15.0]), np.array([5.0, 5.0]), sq, np.array([0.0, 0.0, 10.0, 10.0])
    )
    assert inside.tolist() == [True, False]
