"""OpenCelliD CSV parsing, row by row, and the cell-site table in the registry file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.cell_sites import (
    COLUMNS,
    KNOWN_PLMNS,
    CellSites,
    SiteFileError,
    bbox_around,
    operator_of,
    parse_opencellid_text,
)

GOOD = "LTE,452,4,13011,27447297,212,106.6822,20.8561,1250,34,1,1459692893,1700000000,-95"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("LTX,452,4,1,2,3,106.6,20.8,100,1,1,0,0,0", "radio"),
        ("LTE,4520,4,1,2,3,106.6,20.8,100,1,1,0,0,0", "mcc"),
        ("LTE,452,4,1,-2,3,106.6,20.8,100,1,1,0,0,0", "cell"),
        ("LTE,452,4,1,2,3,206.6,20.8,100,1,1,0,0,0", "lon"),
        ("LTE,452,4,1,2,3,106.6,nan,100,1,1,0,0,0", "lat"),
        ("LTE,452,4,1,2,3,106.6,20.8,100,1,2,0,0,0", "changeable"),
        ("LTE,452,4,1,2,3,106.6,20.8,100,x,1,0,0,0", "samples"),
        ("LTE,452,4,1,2,3,106.6,20.8,100,1,1,0,0,5", "averageSignal"),
        ("LTE,452,4,1,2,3,106.6,20.8", "fields"),
    ],
)
def test_each_bad_row_is_refused_with_its_line_and_column(row: str, reason: str) -> None:
    parsed = parse_opencellid_text(f"{GOOD}\n{row}\n{GOOD.replace('27447297', '5')}\n")
    assert [s.cell for s in parsed.sites] == [27447297, 5]
    assert len(parsed.errors) == 1 and parsed.errors[0].line == 2
    assert reason in parsed.errors[0].reason


def test_a_good_row_reads_every_column() -> None:
    (site,) = parse_opencellid_text(GOOD).sites
    assert (site.radio, site.mcc, site.net, site.area, site.cell, site.unit) == (
        "LTE",
        452,
        4,
        13011,
        27447297,
        212,
    )
    assert (site.lon, site.lat, site.range_m, site.samples) == (106.6822, 20.8561, 1250, 34)
    assert site.changeable and site.created_s == 1459692893 and site.average_signal_dbm == -95
    assert site.key == "LTE:452-04:13011:27447297"


def test_unknown_values_and_header_by_name() -> None:
    header = "lat,lon,radio,mcc,net,area,cell,unit,range,samples,changeable,created,updated,averageSignal"
    parsed = parse_opencellid_text(f"{header}\r\n20.8,106.6,nr,452,4,1,2,-1,100,1,0,0,0,0\r\n\r\n")
    (site,) = parsed.sites
    assert (site.radio, site.lat, site.lon, site.unit, site.average_signal_dbm) == (
        "NR",
        20.8,
        106.6,
        None,
        None,
    )
    assert parsed.rows == 1 and not parsed.errors


def test_a_header_without_opencellid_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(SiteFileError, match="lacks the OpenCelliD column"):
        parse_opencellid_text("radio,mcc,net\nLTE,452,4\n")


def test_a_site_listed_twice_keeps_its_last_row() -> None:
    parsed = parse_opencellid_text(GOOD + "\n" + GOOD.replace(",1250,", ",900,"))
    assert [s.range_m for s in parsed.sites] == [900]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=16), max_size=6))
def test_any_text_gives_rows_or_errors_never_a_crash(rows: list[list[str]]) -> None:
    text = "\n".join(",".join(f.replace("\n", " ").replace('"', "") for f in r) for r in rows)
    try:
        parsed = parse_opencellid_text(text)
    except SiteFileError:
        return
    assert len(parsed.sites) + len(parsed.errors) <= parsed.rows


def test_operator_names_from_the_config_then_the_public_list() -> None:
    (site,) = parse_opencellid_text(GOOD).sites
    assert operator_of(site, {}) == KNOWN_PLMNS["452-04"] == "Viettel"
    assert operator_of(site, {"452-04": "Local name"}) == "Local name"
    (other,) = parse_opencellid_text(GOOD.replace(",452,4,", ",452,90,")).sites
    assert operator_of(other, {}) is None
    assert operator_of(other, {"452-090": "Lotus Mobile"}) == "Lotus Mobile"


def test_store_adds_replaces_and_finds_sites_by_box(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    store = CellSites(path)
    first = parse_opencellid_text(
        f"{GOOD}\n{GOOD.replace('27447297', '7').replace('106.6822', '107.5')}"
    ).sites
    assert store.put(first) == (2, 0)
    assert store.put(parse_opencellid_text(GOOD.replace(",1250,", ",700,")).sites) == (0, 1)
    store.close()
    store = CellSites(path)  # durable: a new handle sees them
    assert store.count() == 2
    box = bbox_around([(106.68, 20.85), (106.69, 20.86)], 1000.0)
    (near,) = store.sites(box)
    assert near.cell == 27447297 and near.range_m == 700
    assert path.stat().st_mode & 0o077 == 0
    store.close()


def test_bbox_margin_is_in_metres() -> None:
    box = bbox_around([(106.0, 20.0)], 1000.0)
    assert box[3] - 20.0 == pytest.approx(1000.0 / 110_574.0)
    assert box[2] - 106.0 == pytest.approx(1000.0 / (111_320.0 * 0.9397), rel=1e-3)
    assert len(COLUMNS) == 14
