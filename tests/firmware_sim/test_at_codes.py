"""27.007 code mappings and the AT interpreter, property-based."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.devices.at_modem import (
    AtSession,
    ModemSnapshot,
    csq_rssi_code,
    lte_rsrp_code,
    lte_rsrq_code,
    nr_rsrp_code,
    nr_rsrq_code,
    nr_sinr_code,
)
from firmware_sim.radio.environment import CellInfo
from firmware_sim.world import Link

finite: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
EPS = 1e-9  # a value within rounding error of a step boundary may land in either step


@given(st.floats(-140.0, -44.01, **finite))
def test_lte_rsrp_code_brackets_the_value(rsrp: float) -> None:
    n = lte_rsrp_code(rsrp)
    assert 1 <= n <= 96
    assert -141 + n - EPS <= rsrp < -140 + n + EPS


@given(st.floats(-19.5, -3.01, **finite))
def test_lte_rsrq_code_brackets_the_value(rsrq: float) -> None:
    n = lte_rsrq_code(rsrq)
    assert -20 + n / 2 - EPS <= rsrq < -19.5 + n / 2 + EPS


@given(
    st.floats(-156.0, -31.01, **finite), st.floats(-43.0, 19.9, **finite), st.floats(-23.0, 39.9, **finite)
)
def test_nr_codes_bracket_the_values(rsrp: float, rsrq: float, sinr: float) -> None:
    assert -157 + nr_rsrp_code(rsrp) - EPS <= rsrp < -156 + nr_rsrp_code(rsrp) + EPS
    assert -43.5 + nr_rsrq_code(rsrq) / 2 - EPS <= rsrq < -43 + nr_rsrq_code(rsrq) / 2 + EPS
    assert -23.5 + nr_sinr_code(sinr) / 2 - EPS <= sinr < -23 + nr_sinr_code(sinr) / 2 + EPS


@given(st.floats(-200.0, 0.0, **finite))
def test_csq_is_nearest_step_and_saturates(rssi: float) -> None:
    n = csq_rssi_code(rssi)
    assert 0 <= n <= 31
    if -113 < rssi < -51:
        assert abs(-113 + 2 * n - rssi) <= 1.0 + 1e-9
    assert lte_rsrp_code(-200.0) == 0 and lte_rsrp_code(0.0) == 97 and nr_rsrp_code(0.0) == 127


_CELL = CellInfo(
    operator="op", tech="LTE", site="s", band="B3", band_number=3, duplex="FDD", arfcn=1575, pci=7,
    cell_id=0x2A3B01, tac=0x1000, bandwidth_mhz=20, scs_khz=15, mcc=452, mnc=90,
)  # fmt: skip


def _snapshot() -> ModemSnapshot:
    link = Link(
        operator="op", tech="LTE", rsrp_dbm=-95.4, rsrq_db=-10.6, sinr_db=12.2, rssi_dbm=-65.0, cell=_CELL
    )
    return ModemSnapshot(link=link, operator_name="Op", now_ms=0, fix=None)


@given(st.text(max_size=200))
def test_any_line_gets_a_final_result_code(line: str) -> None:
    out = AtSession(_snapshot).handle(line)
    if line.strip():
        assert out.endswith(("\r\nOK\r\n", "\r\nERROR\r\n")) or "+CME ERROR:" in out


def test_qeng_lte_fields() -> None:
    out = AtSession(_snapshot).handle('AT+QENG="servingcell"')
    line = out.split("\r\n")[1]
    f = line.removeprefix("+QENG: ").split(",")
    assert f[6] == "2A3B01" and f[12] == "1000"
    assert [int(v) for v in f[13:17]] == [-95, -11, -65, 12]
    assert int(f[19]) == -95 + 124
    assert not math.isnan(float(f[17]))
