"""Signal classes: boundaries, SINR floor, NaN handling, Wi-Fi and broadband classes, table-style."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.signal import (
    CLASS_INDEX,
    UNKNOWN,
    BroadbandTargets,
    SignalProfile,
    TechThresholds,
    class_name,
    classify,
    classify_broadband,
    classify_wifi,
)


@pytest.mark.parametrize(
    ("rsrp", "sinr", "tech", "expected"),
    [
        (-79.9, None, "LTE", "excellent"),
        (-80.0, None, "LTE", "excellent"),
        (-80.1, None, "LTE", "good"),
        (-90.0, None, "LTE", "good"),
        (-95.0, None, "NR", "fair"),
        (-100.0, None, "LTE", "fair"),
        (-110.0, None, "LTE", "poor"),
        (-110.1, None, "LTE", "none"),
        (-70.0, -0.1, "LTE", "none"),
        (-70.0, 0.0, "LTE", "excellent"),
        (-70.0, math.nan, "NR", "excellent"),
        (-100.0, None, "UMTS", "poor"),
        (math.nan, 10.0, "LTE", "unknown"),
    ],
)
def test_classify_table(rsrp: float, sinr: float | None, tech: str, expected: str) -> None:
    got = classify([rsrp], None if sinr is None else [sinr], tech=tech)
    assert class_name(int(got[0])) == expected


def test_profile_change_reclasses_the_same_raw_values() -> None:
    strict = SignalProfile(
        name="strict-1", techs={"LTE": TechThresholds(rsrp_lower_dbm=(-100, -95, -85, -75))}
    )
    raw = np.array([-104.0, -97.0, -88.0])
    assert [class_name(c) for c in classify(raw)] == ["poor", "fair", "good"]
    assert [class_name(c) for c in classify(raw, profile=strict)] == ["none", "poor", "fair"]


def test_unknown_technology_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'WIMAX'"):
        classify([-90.0], tech="WIMAX")


@pytest.mark.parametrize(
    ("rssi", "expected"),
    [
        (-45.0, "excellent"),
        (-50.0, "excellent"),
        (-60.0, "good"),
        (-65.0, "fair"),
        (-70.0, "fair"),
        (-79.0, "poor"),
        (-81.0, "none"),
    ],
)
def test_wifi_table(rssi: float, expected: str) -> None:
    assert class_name(int(classify_wifi([rssi])[0])) == expected
    assert classify_wifi([math.nan])[0] == UNKNOWN


@pytest.mark.parametrize(
    ("down", "up", "lat", "loss", "expected"),
    [
        (150.0, 30.0, 40.0, 0.0, 2),
        (100.0, 20.0, 100.0, 1.0, 2),  # exactly on every target meets it
        (90.0, 30.0, 40.0, 0.0, 1),
        (90.0, 10.0, 40.0, 0.0, 0),
        (math.nan, 30.0, 40.0, 0.0, 2),  # not measured neither meets nor misses
        (math.nan, math.nan, math.nan, math.nan, UNKNOWN),
    ],
)
def test_broadband_table(down: float, up: float, lat: float, loss: float, expected: int) -> None:
    got = classify_broadband(down_mbps=[down], up_mbps=[up], latency_p95_ms=[lat], loss_pct=[loss])
    assert int(got[0]) == expected
    strict = BroadbandTargets(down_mbps=1000.0)
    if expected == 2 and not math.isnan(down):
        assert (
            int(
                classify_broadband(
                    down_mbps=[down], up_mbps=[up], latency_p95_ms=[lat], loss_pct=[loss], targets=strict
                )[0]
            )
            == 1
        )


def test_class_index_order() -> None:
    assert (
        CLASS_INDEX["none"]
        < CLASS_INDEX["poor"]
        < CLASS_INDEX["fair"]
        < CLASS_INDEX["good"]
        < CLASS_INDEX["excellent"]
    )
