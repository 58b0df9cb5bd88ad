"""Wi-Fi scan parsers on captured ``iw`` and ``nmcli`` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.collectors.wifi import to_readings
from edge_agent.collectors.wifi_parse import AccessPoint, channel_of, parse_iw_scan, parse_nmcli

SAMPLES = Path(__file__).parent / "samples"


def test_iw_scan_sample() -> None:
    aps = parse_iw_scan((SAMPLES / "iw_scan.txt").read_text())
    assert aps == [
        AccessPoint(
            bssid="3c:84:6a:12:34:56", ssid="DEEP-C Factory", rssi_dbm=-48.0, freq_mhz=2437, channel=6
        ),
        AccessPoint(
            bssid="3c:84:6a:12:34:57", ssid="DEEP-C Guest", rssi_dbm=-71.0, freq_mhz=5180, channel=36
        ),
        AccessPoint(bssid="a0:ab:1b:00:00:01", ssid=None, rssi_dbm=-83.5, freq_mhz=5745, channel=149),
    ]


def test_nmcli_sample_unescapes_colons_and_maps_quality_to_dbm() -> None:
    aps = parse_nmcli((SAMPLES / "nmcli_wifi.txt").read_text())
    assert [a.bssid for a in aps] == [
        "3c:84:6a:12:34:56",
        "3c:84:6a:12:34:57",
        "a0:ab:1b:00:00:01",
        "11:22:33:44:55:66",
    ]
    assert aps[0] == AccessPoint(
        bssid="3c:84:6a:12:34:56", ssid="DEEP-C Factory", rssi_dbm=-52.5, freq_mhz=2437, channel=6
    )
    assert aps[2].ssid is None
    assert aps[3].ssid == "Weird:Name"
    assert aps[3].rssi_dbm == -50.0


@pytest.mark.parametrize(
    ("freq", "channel"),
    [
        (2412, 1),
        (2437, 6),
        (2472, 13),
        (2484, 14),
        (5180, 36),
        (5745, 149),
        (5955, 1),
        (6115, 33),
        (900, None),
    ],
)
def test_channel_of(freq: int, channel: int | None) -> None:
    assert channel_of(freq) == channel


def test_readings_from_scan_are_contract_valid() -> None:
    aps = parse_iw_scan((SAMPLES / "iw_scan.txt").read_text())
    readings = to_readings("wifi-1", 1_700_000_000_000, aps)
    assert len(readings) == 3
    assert {r.bssid for r in readings} == {a.bssid for a in aps}  # type: ignore[attr-defined]
