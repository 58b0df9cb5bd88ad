"""``parkwatch import`` into real stores: stored once, re-import idempotent, DuckDB's writer lock."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from parkwatch.cli import main
from tests.ingest.helpers import influx_rows
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "surveys" / "gnettrack_survey.csv"
ARGS = ["--park", "hd-new", "--mapping", "gnettrack", "--timezone", "Asia/Ho_Chi_Minh", "--json"]


def _config(tmp_path: Path, sink: dict[str, Any], name: str = "ingest.toml") -> Path:
    lines = ["[sink]", *(f"{k} = {json.dumps(v)}" for k, v in sink.items())]
    lines += ["[ingest]", f'spool_dir = "{tmp_path / "spool"}"', "metrics_port = 0"]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


async def _import(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    argv = ["import", str(FIXTURE), *ARGS, "--config", str(config), *extra]
    assert await asyncio.to_thread(main, argv) == 0  # the command runs its own event loop
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


async def _count(kind: str, sink: dict[str, Any], server: ServerProcess | None) -> tuple[int, int, int]:
    """(cellular readings, of them without sinr_db, dead letters)."""
    if kind == "duckdb":
        with duckdb.connect(sink["path"], read_only=True) as con:
            cells = con.execute("SELECT count(*), count(*) - count(sinr_db) FROM cellular").fetchone()
            dead = con.execute("SELECT count(*) FROM dead_letter").fetchone()
        assert cells is not None and dead is not None
        return int(cells[0]), int(cells[1]), int(dead[0])
    assert server is not None
    rows = await influx_rows(
        server.port, sink["database"], 'SELECT count("rsrp_dbm"), count("sinr_db") FROM cellular'
    )
    dead_rows = await influx_rows(server.port, sink["database"], 'SELECT count("reason") FROM dead_letter')
    return int(rows[0]["count"]), int(rows[0]["count"]) - int(rows[0]["count_1"]), int(dead_rows[0]["count"])


@pytest.mark.parametrize("kind", ["duckdb", "influxdb"])
async def test_import_stores_each_point_once(
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    influx_db_name: str,
) -> None:
    server: ServerProcess | None = None
    if kind == "duckdb":
        # The survey is months old: beyond DuckDB's default retention of 90 days.
        sink: dict[str, Any] = {"type": "duckdb", "path": str(tmp_path / "store.duckdb"), "retention_days": 0}
    else:
        server = request.getfixturevalue("influxdb")
        sink = {"type": "influxdb", "url": f"http://127.0.0.1:{server.port}", "database": influx_db_name}
    config = _config(tmp_path, sink)

    if kind == "duckdb":
        warned = await _import(
            _config(tmp_path, {**sink, "retention_days": 90}, "short.toml"), capsys, "--dry-run"
        )
        assert warned["beyond_retention"] == 115
    dry = await _import(config, capsys, "--dry-run")
    assert dry["beyond_retention"] == 0
    assert (dry["rows"], dry["accepted"], dry["stored"]) == (117, 115, 0)
    assert dry["refused"] == {"malformed:ts": 1, "position": 1}
    assert dry["dropped_fields"] == {"out_of_range:sinr_db": 1}
    if kind == "duckdb":
        assert not await asyncio.to_thread(Path(sink["path"]).exists)  # a dry run opens no store

    first = await _import(config, capsys)
    assert (first["rows"], first["stored"], first["h3_cells"]) == (117, 115, 19)
    assert first["first_ms"] == 1_786_672_802_000  # the survey's own time, months old
    assert await _count(kind, sink, server) == (115, 1, 2)  # the SINR of 41 dB dropped alone

    again = await _import(config, capsys)
    assert again["stored"] == 115
    readings, _, _ = await _count(kind, sink, server)
    assert readings == 115  # nothing stored twice


def test_a_duckdb_file_held_by_a_writer_fails_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "store.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(db)!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        config = _config(tmp_path, {"type": "duckdb", "path": str(db)})
        assert main(["import", str(FIXTURE), *ARGS, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert "is in use" in err and "stop the ingester that holds it" in err
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
