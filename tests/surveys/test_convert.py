"""Survey files → readings as plain data: formats, mappings, times (table-style, no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surveys import BUILTIN_MAPPINGS, Converted, RowProblem, convert_rows, load_mapping, read_rows
from surveys.convert import parse_time_ms
from surveys.formats import SurveyFormatError, guess_format
from surveys.mappings import MappingError

FIXTURE = Path(__file__).with_name("gnettrack_survey.csv")


def _convert(data: bytes, fmt: str, mapping: str = "generic", **kw: str) -> list[Converted | RowProblem]:
    m = load_mapping(mapping)
    return list(convert_rows(read_rows(data, fmt, delimiter=m.delimiter), m, **kw))  # type: ignore[arg-type]


def test_gnettrack_fixture_maps_every_column() -> None:
    out = _convert(FIXTURE.read_bytes(), "csv", "gnettrack", timezone="Asia/Ho_Chi_Minh")
    assert len(out) == 117
    first = out[0]
    assert isinstance(first, Converted)
    r = first.reading
    assert (r["kind"], r["operator"], r["tech"], r["mcc"], r["mnc"], r["dev"]) == (
        "cellular", "Viettel", "LTE", 452, 4, "gnettrack"
    )  # fmt: skip
    assert isinstance(r["rsrp_dbm"], float) and isinstance(r["pci"], int)
    assert r["ts"] == 1_786_672_802_000  # 2026-08-14 09:00:02 in Hanoi = 02:00:02 UTC
    problems = [p for p in out if isinstance(p, RowProblem)]
    assert [(p.row, p.key) for p in problems] == [(117, "malformed:ts")]


def test_generic_csv_jsonl_and_geojson_give_the_same_reading() -> None:
    csv_data = (
        b"lat,lon,time,operator,tech,rsrp,rsrq,sinr\n20.9,106.3,2026-08-14T02:00:00Z,Lotus,lte,-101,-12,3.5\n"
    )
    jsonl = json.dumps(
        {"lat": 20.9, "lon": 106.3, "time": "2026-08-14T02:00:00Z", "operator": "Lotus", "tech": "lte",
         "rsrp": -101, "rsrq": -12, "sinr": 3.5}
    ).encode()  # fmt: skip
    geojson = json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature",
         "geometry": {"type": "Point", "coordinates": [106.3, 20.9]},
         "properties": {"time": 1786672800, "operator": "Lotus", "tech": "lte",
                        "rsrp": -101, "rsrq": -12, "sinr": 3.5}}]}
    ).encode()  # fmt: skip
    readings = [_convert(d, f)[0] for d, f in ((csv_data, "csv"), (jsonl, "jsonl"), (geojson, "geojson"))]
    assert all(isinstance(r, Converted) for r in readings)
    plain = [r.reading for r in readings if isinstance(r, Converted)]
    assert plain[0] == plain[1] == plain[2]
    assert plain[0]["ts"] == 1_786_672_800_000 and plain[0]["rsrp_dbm"] == -101.0


@pytest.mark.parametrize(
    ("value", "fmt", "ms"),
    [
        ("2026-08-14T02:00:00Z", "auto", 1_786_672_800_000),
        ("2026-08-14T09:00:00+07:00", "auto", 1_786_672_800_000),
        ("2026-08-14 02:00:00", "auto", 1_786_672_800_000),
        ("2026.08.14_02.00.00", "auto", 1_786_672_800_000),
        ("1786672800", "auto", 1_786_672_800_000),
        (1786672800123, "auto", 1_786_672_800_123),
        ("14/08/2026 02:00", "%d/%m/%Y %H:%M", 1_786_672_800_000),
    ],
)
def test_times(value: object, fmt: str, ms: int) -> None:
    from zoneinfo import ZoneInfo

    assert parse_time_ms(value, fmt, ZoneInfo("UTC")) == ms


def test_a_user_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "probe.toml"
    path.write_text(
        'name = "probe"\nkind = "broadband"\ntime_format = "%d/%m/%Y %H:%M"\n'
        '[columns]\nts = "When"\ntarget = "Host"\nlatency_ms = "RTT"\nipv6_ok = "v6"\n'
        '[defaults]\ndev = "probe-7"\n'
    )
    (item,) = _convert(b"When;Host;RTT;v6\n14/08/2026 02:00;fibre.example;12,5;yes\n", "csv", str(path))
    assert isinstance(item, Converted)
    assert item.reading == {
        "kind": "broadband", "dev": "probe-7", "ts": 1_786_672_800_000,
        "target": "fibre.example", "latency_ms": 12.5, "ipv6_ok": True,
    }  # fmt: skip


def test_a_value_that_is_no_number_is_passed_on_for_the_contract_to_name() -> None:
    (item,) = _convert(b"lat,lon,time,operator,tech,rsrp\n20.9,106.3,1786672800,A,LTE,strong\n", "csv")
    assert isinstance(item, Converted) and item.reading["rsrp_dbm"] == "strong"


@pytest.mark.parametrize(("spec", "match"), [("nope", "neither a built-in"), ("bad.toml", "kind")])
def test_mapping_errors_say_what_to_fix(
    tmp_path: Path, spec: str, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text('kind = "satellite"\n')
    with pytest.raises(MappingError, match=match):
        load_mapping(spec)


def test_format_errors() -> None:
    assert guess_format("a.GeoJSON") == "geojson" and guess_format("a.ndjson") == "jsonl"
    assert guess_format("a.txt") == "csv"
    with pytest.raises(SurveyFormatError, match="UTF-8"):
        list(read_rows(b"\xff\xfe\x00bad", "csv"))
    with pytest.raises(SurveyFormatError, match="FeatureCollection"):
        list(read_rows(b'{"type": "Feature"}', "geojson"))
    rows = list(read_rows(b'{"a": 1}\nnot json\n[1]\n', "jsonl"))
    assert [("__error__" in r) for _, r in rows] == [False, True, True]
    assert set(BUILTIN_MAPPINGS) == {"gnettrack", "generic"}
