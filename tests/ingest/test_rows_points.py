"""Pure conversions: Arrow tables for DuckDB and line protocol for InfluxDB."""

from __future__ import annotations

import h3.api.basic_int as h3i

from contract import Cellular, Generic, Machine, Wifi
from contract.readings import AnyReading
from ingest.enrich import CellLocator
from ingest.model import Part, WriteBatch
from ingest.points import encode_batch, reading_lines
from ingest.rows import batch_tables, reading_tables
from settings.ingest import GatewayPosition
from storage.duckdb_schema import table_columns

TS = 1_700_000_000_000


def _part() -> Part:
    readings: list[AnyReading] = [
        Cellular(
            ts=TS, dev="m1", operator="Sao Bien", tech="NR", rsrp_dbm=-101.0, pci=17, lat=20.85, lon=106.68
        ),
        Machine(ts=TS + 1, dev="cnc", state="fault", parts_total=12, tags={"line": "L2"}),
        Generic(ts=TS + 2, dev="x", f={"level_m": 3, "mode": "auto", "ok": True}),
        Wifi(ts=TS + 3, dev="scan", rssi_dbm=-40.0),
    ]
    cells = CellLocator(10, {"gw-1": GatewayPosition(lat=20.9, lon=106.7)}).cells("gw-1", readings)
    return Part(park="hp", gw="gw-1", readings=readings, h3=cells)


def test_cells_from_reading_or_gateway_position() -> None:
    part = _part()
    assert part.h3[0] == h3i.latlng_to_cell(20.85, 106.68, 10)
    assert part.h3[1] == h3i.latlng_to_cell(20.9, 106.7, 10)
    assert CellLocator(10).cells("other", [part.readings[1]]) == [0]


def test_arrow_tables_match_the_store_layout() -> None:
    tables = {name: data for name, data, replay in reading_tables([_part()]) if not replay}
    layout = table_columns()
    for kind, table in tables.items():
        assert set(table.column_names) == {c for c, _ in layout[kind]}
    cell = tables["cellular"].to_pylist()[0]
    assert (cell["operator"], cell["tech"], cell["rsrp_dbm"], cell["pci"], cell["park"]) == (
        "Sao Bien",
        "NR",
        -101.0,
        17,
        "hp",
    )
    assert cell["h3"] == h3i.latlng_to_cell(20.85, 106.68, 10)
    machine = tables["machine"].to_pylist()[0]
    assert machine["tags"] == '{"line":"L2"}' and machine["parts_total"] == 12
    generic = sorted((r["name"], r["num"], r["text"], r["flag"]) for r in tables["generic"].to_pylist())
    assert generic == [("level_m", 3.0, None, None), ("mode", None, "auto", None), ("ok", None, None, True)]


def test_lines() -> None:
    part = _part()
    cell_hex = h3i.int_to_str(part.h3[0])
    assert reading_lines(part, part.readings[0], part.h3[0]) == [
        f"cellular,dev=m1,gw=gw-1,h3={cell_hex},operator=Sao\\ Bien,park=hp,tech=NR "
        f"lat=20.85,lon=106.68,rsrp_dbm=-101.0,pci=17i {TS * 1_000_000}"
    ]
    generic = reading_lines(part, part.readings[2], part.h3[2])
    assert [line.split(" ")[1] for line in generic] == ["num=3.0", 'text="auto"', "flag=true"]
    assert all(",name=" in line for line in generic)
    wifi = reading_lines(part, part.readings[3], 0)
    assert wifi == [f"wifi,dev=scan,gw=gw-1,park=hp rssi_dbm=-40.0 {(TS + 3) * 1_000_000}"]


def test_unstorable_tag_becomes_a_dead_letter() -> None:
    bad = Cellular(ts=TS, dev="m1", operator="evil\\", tech="LTE")
    part = Part(park="hp", gw="gw-1", readings=[bad, _part().readings[1]], h3=[0, 0])
    enc = encode_batch(WriteBatch(parts=[part]), src="ing-a", now_ns=5)
    assert enc.readings == 1
    assert len(enc.rejected) == 1 and "backslash" in enc.rejected[0].reason
    assert enc.lines[-1].startswith("dead_letter,gw=gw-1,park=hp,src=ing-a ")
    assert len(batch_tables(WriteBatch(parts=[part]))) == 2


def test_replayed_parts_get_tables_of_their_own_after_the_others() -> None:
    fresh = _part()
    replayed = Part(park="hp", gw="gw-2", readings=fresh.readings[:2], h3=fresh.h3[:2], replay=True)
    items = reading_tables([replayed, fresh])
    assert [replay for _, _, replay in items] == [False] * 4 + [True] * 2
    assert {name for name, _, replay in items if replay} == {"cellular", "machine"}


def test_integer_json_in_a_float_field_is_written_as_a_float() -> None:
    from contract import decode_batch

    payload = (
        b'{"v":1,"gw":"gw-1","seq":1,"readings":[{"kind":"cellular","ts":%d,"dev":"m","operator":"A",'
        b'"tech":"LTE","rsrp_dbm":-100,"pci":7}]}' % (TS,)
    )
    decoded = decode_batch(payload, now_ms=TS)
    part = Part(park="hp", gw="gw-1", readings=decoded.readings, h3=[0])
    (line,) = reading_lines(part, decoded.readings[0], 0)
    assert " rsrp_dbm=-100.0,pci=7i " in line


def test_gap_repair_counters_of_a_status_reach_both_stores() -> None:
    from contract.messages import Status
    from ingest.model import StatusRow
    from ingest.points import status_line
    from ingest.rows import status_table

    row = StatusRow(
        ts_ms=TS,
        park="hp",
        gw="gw-1",
        status=Status(v=1, gw="gw-1", state="online", unconfirmed=40, expired=2),
    )
    line = status_line(row)
    assert "unconfirmed=40i" in line and "expired=2i" in line
    table = status_table([row])
    assert set(table.column_names) == {c for c, _ in table_columns()["gateway_status"]}
    assert table.to_pylist()[0]["unconfirmed"] == 40 and table.to_pylist()[0]["expired"] == 2
