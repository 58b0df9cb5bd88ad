"""The DuckDB store against a real DuckDB file: idempotent appends, retention, ledger reload."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from storage.duckdb_store import DuckStore
from storage.ledger_snapshot import LedgerSnapshot

pytestmark = pytest.mark.integration


def _wifi(ts_ms: list[int], ssid: list[str | None], rssi: list[float]) -> pa.Table:
    n = len(ts_ms)
    return pa.table(
        {
            "ts": pa.array(ts_ms, type=pa.timestamp("ms")),
            "park": ["p"] * n,
            "gw": ["g"] * n,
            "dev": ["d"] * n,
            "ssid": pa.array(ssid, type=pa.string()),
            "rssi_dbm": rssi,
        }
    )


def test_append_is_idempotent_by_row_key(tmp_path: Path) -> None:
    store = DuckStore(str(tmp_path / "s.duckdb"))
    now = int(time.time() * 1000)
    first = _wifi([now, now, now + 1], ["a", None, "a"], [-50.0, -60.0, -55.0])
    assert store.append([("wifi", first, False)]) == 3
    replay = _wifi([now, now, now + 2, now + 2], ["a", None, "b", "b"], [-50.0, -60.0, -70.0, -70.0])
    assert store.append([("wifi", replay, True)]) == 1  # only (now+2, "b"), once
    assert store.count("wifi") == 4
    fresh = _wifi([now + 5, now + 5], ["c", "c"], [-1.0, -1.0])
    assert store.append([("wifi", fresh, False)]) == 1  # duplicates inside one append collapse
    assert store.count("wifi") == 5
    store.close()


def test_retention_and_ledger(tmp_path: Path) -> None:
    path = str(tmp_path / "s.duckdb")
    store = DuckStore(path)
    now = int(time.time() * 1000)
    old = now - 10 * 86_400_000
    store.append([("wifi", _wifi([old, now], ["a", "a"], [-1.0, -2.0]), False)])
    assert store.delete_older_than(now - 86_400_000) == 1
    assert store.count("wifi") == 1
    ledger = pa.table(
        {
            "ts": pa.array([now, now + 10, now], type=pa.timestamp("ms")),
            "park": ["p", "p", "p"],
            "gw": ["g1", "g1", "g2"],
            "received": [5, 9, 1],
            "missing": [1, 0, 0],
            "duplicated": [0, 2, 0],
            "late": [0, 1, 0],
            "last_seq": [5, 9, 0],
        }
    )
    store.append([("loss_ledger", ledger, False)])
    store.close()
    reopened = DuckStore(path)
    assert sorted(reopened.latest_ledger(), key=lambda s: s.gw) == [
        LedgerSnapshot(park="p", gw="g1", received=9, missing=0, duplicated=2, late=1, last_seq=9),
        LedgerSnapshot(park="p", gw="g2", received=1, missing=0, duplicated=0, late=0, last_seq=0),
    ]
    reopened.close()


def test_a_file_written_by_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    import duckdb

    from storage.duckdb_schema import table_columns

    path = tmp_path / "old.duckdb"
    # The cellular table as an older version created it: without the no_service column.
    old_cols = [(c, t) for c, t in table_columns()["cellular"] if c != "no_service"]
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE cellular ({', '.join(f'{c} {t}' for c, t in old_cols)})")
    con.execute(
        "INSERT INTO cellular (ts, park, gw, dev, operator, tech, rsrp_dbm) "
        "VALUES (TIMESTAMP '2026-11-01 00:00:00', 'p', 'g', 'd', 'A', 'LTE', -95.0)"
    )
    con.close()

    store = DuckStore(str(path))
    now = int(time.time() * 1000)
    new = pa.table(
        {
            "ts": pa.array([now], type=pa.timestamp("ms")),
            "park": ["p"],
            "gw": ["g"],
            "dev": ["d"],
            "operator": ["A"],
            "tech": ["LTE"],
            "no_service": [True],
        }
    )
    assert store.append([("cellular", new, False)]) == 1
    rows = store.sql("SELECT rsrp_dbm, no_service FROM cellular ORDER BY ts")
    store.close()
    assert rows == [(-95.0, None), (None, True)]


def test_a_ledger_without_restarts_gains_the_column_and_reloads_as_zero(tmp_path: Path) -> None:
    import duckdb

    from storage.duckdb_schema import table_columns

    path = tmp_path / "old.duckdb"
    old_cols = [(c, t) for c, t in table_columns()["loss_ledger"] if c != "restarts"]
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE loss_ledger ({', '.join(f'{c} {t}' for c, t in old_cols)})")
    con.execute(
        "INSERT INTO loss_ledger VALUES (TIMESTAMP '2026-11-01 00:00:00', 'p', 'g', 3, 0, 0, 0, 2, 'ing-1')"
    )
    con.close()
    store = DuckStore(str(path))
    assert store.latest_ledger() == [
        LedgerSnapshot(
            park="p", gw="g", received=3, missing=0, duplicated=0, late=0, last_seq=2, ingester="ing-1"
        )
    ]
    now = int(time.time() * 1000)
    row = pa.table(
        {
            "ts": pa.array([now], type=pa.timestamp("ms")),
            "park": ["p"],
            "gw": ["g"],
            "received": [4],
            "missing": [0],
            "duplicated": [0],
            "late": [0],
            "last_seq": [7],
            "ingester": ["ing-1"],
            "restarts": [1],
        }
    )
    store.append([("loss_ledger", row, False)])
    (snap,) = store.latest_ledger()
    store.close()
    assert (snap.last_seq, snap.restarts) == (7, 1)


def test_a_value_duckdb_cannot_convert_is_a_data_error(tmp_path: Path) -> None:
    from storage.duckdb_store import StoreDataError

    store = DuckStore(str(tmp_path / "s.duckdb"))
    bad = pa.table(
        {
            "ts": pa.array([0], type=pa.timestamp("ms")),
            "park": ["p"],
            "gw": ["g"],
            "backlog": pa.array([2**64 - 1], type=pa.uint64()),
        }
    )
    with pytest.raises(StoreDataError, match="refused the data"):
        store.append([("gateway_status", bad, False)])
    assert store.count("gateway_status") == 0
    store.close()
