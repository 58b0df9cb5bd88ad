"""AT answer parsers, table-style, on answers in the agreed (Quectel / 27.007) formats."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.collectors.at_parse import (
    Cesq,
    Fix,
    Operator,
    ServingCell,
    is_final,
    parse_cesq,
    parse_cops,
    parse_csq,
    parse_qeng,
    parse_qgpsloc,
)
from edge_agent.collectors.cellular import to_reading

LTE = '+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2B3C4,123,1850,3,5,5,2F1A,-95,-11,-65,13,9,20,40'
NR = '+QENG: "servingcell","NOCONN","NR5G-SA","TDD",452,02,8F3A1B2C5,501,7A2B,627264,78,12,-88,-12,18,1,35'


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [LTE],
            ServingCell(
                tech="LTE",
                mcc=452,
                mnc=4,
                cell_id=0x1A2B3C4,
                pci=123,
                earfcn=1850,
                band="B3",
                rsrp_dbm=-95,
                rsrq_db=-11,
                rssi_dbm=-65,
                sinr_db=13,
            ),
        ),
        (
            [NR],
            ServingCell(
                tech="NR",
                mcc=452,
                mnc=2,
                cell_id=0x8F3A1B2C5,
                pci=501,
                earfcn=627264,
                band="n78",
                rsrp_dbm=-88,
                rsrq_db=-12,
                sinr_db=18,
            ),
        ),
        (['+QENG: "servingcell","SEARCH"'], ServingCell(tech=None)),
        (["+CSQ: 20,99"], None),
        (
            [
                '+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2B3C4,123,1850,3,5,5,2F1A,-170,-11,-65,55,9,20,40'
            ],
            ServingCell(
                tech="LTE",
                mcc=452,
                mnc=4,
                cell_id=0x1A2B3C4,
                pci=123,
                earfcn=1850,
                band="B3",
                rsrp_dbm=-156,
                rsrq_db=-11,
                rssi_dbm=-65,
                sinr_db=40,
            ),
        ),
        (
            [
                '+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2B3C4,123,1850,3,5,5,2F1A,-95,-11,-65,-,9,20,40'
            ],
            ServingCell(
                tech="LTE",
                mcc=452,
                mnc=4,
                cell_id=0x1A2B3C4,
                pci=123,
                earfcn=1850,
                band="B3",
                rsrp_dbm=-95,
                rsrq_db=-11,
                rssi_dbm=-65,
                sinr_db=None,
            ),
        ),
    ],
)
def test_parse_qeng(lines: list[str], expected: ServingCell | None) -> None:
    assert parse_qeng(lines) == expected


def test_parse_qeng_unknown_format_raises() -> None:
    with pytest.raises(ValueError, match="unknown"):
        parse_qeng(['+QENG: "servingcell","NOCONN","WCDMA",452,04'])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('+COPS: 0,0,"Viettel",7', Operator(name="Viettel", tech="LTE")),
        ('+COPS: 0,0,"VinaPhone",11', Operator(name="VinaPhone", tech="NR")),
        ('+COPS: 0,0,"MobiFone"', Operator(name="MobiFone", tech=None)),
        ("+COPS: 0", None),
        ('+COPS: 0,0,"",7', None),
    ],
)
def test_parse_cops(line: str, expected: Operator | None) -> None:
    assert parse_cops([line]) == expected


@pytest.mark.parametrize(
    ("line", "dbm"),
    [("+CSQ: 0,99", -113.0), ("+CSQ: 31,99", -51.0), ("+CSQ: 20,0", -73.0), ("+CSQ: 99,99", None)],
)
def test_parse_csq(line: str, dbm: float | None) -> None:
    assert parse_csq([line]) == dbm


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+CESQ: 99,99,255,255,18,46", Cesq(rsrq_db=-11.0, rsrp_dbm=-95.0)),
        ("+CESQ: 99,99,255,255,0,0", Cesq(rsrq_db=-20.0, rsrp_dbm=-141.0)),
        ("+CESQ: 99,99,255,255,34,97", Cesq(rsrq_db=-3.0, rsrp_dbm=-44.0)),
        ("+CESQ: 99,99,255,255,255,255", Cesq(rsrq_db=None, rsrp_dbm=None)),
        (
            "+CESQ: 99,99,255,255,255,255,62,69,83",
            Cesq(rsrq_db=None, rsrp_dbm=None, ss_rsrq_db=-12.5, ss_rsrp_dbm=-88.0, ss_sinr_db=18.0),
        ),
    ],
)
def test_parse_cesq(line: str, expected: Cesq) -> None:
    assert parse_cesq([line]) == expected


def test_parse_qgpsloc() -> None:
    fix = parse_qgpsloc(["+QGPSLOC: 031500.000,20.8449,106.6881,1.2,12.0,3,0.0,0.0,0.0,231126,09"])
    assert fix == Fix(
        lat=20.8449,
        lon=106.6881,
        alt_m=12.0,
        ts_ms=int(datetime(2026, 11, 23, 3, 15, tzinfo=UTC).timestamp() * 1000),
        satellites=9,
    )
    assert parse_qgpsloc(["+CME ERROR: 516"]) is None
    assert parse_qgpsloc(["+QGPSLOC: 031500.000,0.0,0.0,1.2,12.0,3,0.0,0.0,0.0,231126,09"]) is None


@pytest.mark.parametrize(
    ("line", "final"),
    [("OK", True), ("ERROR", True), ("+CME ERROR: 516", True), ("+CSQ: 20,99", False), ("", False)],
)
def test_is_final(line: str, final: bool) -> None:
    assert is_final(line) is final


def test_reading_combines_operator_cell_and_fix() -> None:
    r = to_reading(
        "modem-1",
        1_700_000_000_000,
        parse_cops(['+COPS: 0,0,"Viettel",7']),
        parse_qeng([LTE]),
        parse_qgpsloc(["+QGPSLOC: 031500.000,20.8449,106.6881,1.2,12.0,3,0.0,0.0,0.0,231126,09"]),
    )
    assert r is not None
    assert (r.operator, r.tech, r.rsrp_dbm, r.band, r.lat, r.lon) == (
        "Viettel",
        "LTE",
        -95,
        "B3",
        20.8449,
        106.6881,
    )


def test_no_service_is_reported_at_the_floor_with_the_flag() -> None:
    r = to_reading("m", 1, Operator(name="Viettel", tech="LTE"), ServingCell(tech=None), None)
    assert r is not None and (r.no_service, r.rsrp_dbm, r.tech, r.operator) == (
        True,
        -140.0,
        "LTE",
        "Viettel",
    )
    # Not registered: attributed to the SIM's configured operator, or not reported at all.
    assert to_reading("m", 1, None, ServingCell(tech=None), None) is None
    fix = parse_qgpsloc(["+QGPSLOC: 031500.000,20.8449,106.6881,1.2,12.0,3,0.0,0.0,0.0,231126,09"])
    r = to_reading("m", 1, None, None, fix, sim_operator="Lotus Mobile", sim_tech="NR")
    assert r is not None and (r.operator, r.tech, r.no_service, r.lat) == (
        "Lotus Mobile",
        "NR",
        True,
        20.8449,
    )


@given(st.text(max_size=200))
def test_parsers_never_crash_on_garbage(text: str) -> None:
    lines = text.splitlines()
    parse_cops(lines)
    parse_csq(lines)
    parse_cesq(lines)
    parse_qgpsloc(lines)
    with contextlib.suppress(ValueError):
        parse_qeng(lines)
