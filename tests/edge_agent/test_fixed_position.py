"""A gateway with a fixed position stamps it on its network readings; `edge init` asks for it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from contract.readings import Broadband, Cellular, Machine, Wifi
from edge_agent.agent import with_fixed_position
from edge_agent.init_config import InitValues, parse_position, prompt_missing
from settings.edge import EdgeSettings
from settings.errors import ConfigError
from settings.loader import load_settings

TS = 1_700_000_000_000


@pytest.mark.parametrize(
    ("reading", "placed"),
    [
        (Cellular(ts=TS, dev="m", operator="A", tech="LTE", rsrp_dbm=-100.0), True),
        (Wifi(ts=TS, dev="w", rssi_dbm=-50.0), True),
        (Broadband(ts=TS, dev="b", target="t", latency_ms=5.0), True),
        (Machine(ts=TS, dev="cnc", state="running"), False),  # not binned on a map: left as it is
        (Cellular(ts=TS, dev="m", operator="A", tech="LTE", rsrp_dbm=-100.0, lat=1.0, lon=2.0), False),
    ],
)
def test_network_readings_without_a_position_get_the_gateways(reading: object, placed: bool) -> None:
    out = with_fixed_position(reading, 20.85, 106.7)  # type: ignore[arg-type]
    if placed:
        assert (out.lat, out.lon) == (20.85, 106.7)
        assert type(out) is type(reading)
    else:
        assert out is reading
    # A moving gateway (no fixed position) changes nothing.
    assert with_fixed_position(reading, None, None) is reading


def test_lat_and_lon_go_together(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[agent]\npark = "p1"\ngateway = "gw-1"\nlat = 20.85\n')
    with pytest.raises(ConfigError, match=r"lat and agent\.lon go together"):
        load_settings(EdgeSettings, str(path))


@pytest.mark.parametrize("text", ["20.8", "a,b", "91,0", "0,181", "1,2,3", "nan,1"])
def test_bad_positions_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ConfigError, match="position"):
        parse_position(text)


def test_the_prompt_asks_for_the_position_until_it_reads() -> None:
    answers = iter(["p1", "gw-1", "", "", "", "20.8,north", "20.8561, 106.7367", ""])
    v = InitValues()
    prompt_missing(v, ask=lambda _q: next(answers), secret=lambda _q: "")
    assert (v.lat, v.lon) == (20.8561, 106.7367)


def test_edge_init_writes_the_position(tmp_path: Path) -> None:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    out = tmp_path / "edge.toml"
    done = subprocess.run(
        [exe, "edge", "init", "--park", "p1", "--gateway", "gw-1", "--position", "20.8561,106.7367",
         "--non-interactive", "--state-dir", str(tmp_path / "state"), "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    settings = load_settings(EdgeSettings, str(out))
    assert (settings.agent.lat, settings.agent.lon) == (20.8561, 106.7367)
    bad = subprocess.run(
        [exe, "edge", "init", "--park", "p1", "--gateway", "gw-1", "--position", "north",
         "--non-interactive", "--out", str(tmp_path / "x.toml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "LAT,LON" in bad.stderr
