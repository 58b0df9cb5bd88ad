"""The sink registry keeps optional dependencies optional: the InfluxDB sink needs no DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _modules_after_import(statement: str) -> set[str]:
    """The top-level modules loaded by a fresh interpreter after ``statement``."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.partition('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=dict(os.environ)
    )
    modules: set[str] = set(json.loads(out.stdout))
    return modules


def test_loading_the_influxdb_sink_imports_neither_duckdb_nor_pyarrow() -> None:
    loaded = _modules_after_import(
        "from ingest.sinks.base import load_sink\n"
        "from settings.ingest import InfluxSinkSettings\n"
        "load_sink(InfluxSinkSettings(), src='test')"
    )
    assert "ingest" in loaded and "httpx" in loaded  # the sink was really built
    assert not {"duckdb", "pyarrow"} & loaded


def test_loading_the_duckdb_sink_does_import_duckdb() -> None:
    # The check above can fail: the same probe sees DuckDB when the DuckDB sink is chosen.
    loaded = _modules_after_import("import ingest.sinks.duckdb")
    assert "duckdb" in loaded
