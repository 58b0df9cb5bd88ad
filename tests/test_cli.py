"""The console script: help for every command, and ``parkwatch edge --help`` on an edge-only install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parkwatch.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: parkwatch " + command in capsys.readouterr().out


SERVER_ONLY = ["fastapi", "uvicorn", "duckdb", "numpy", "h3", "amqtt", "pyarrow", "httpx", "rich"]


def test_edge_help_works_without_server_dependencies() -> None:
    """Simulate an edge-only install: server packages cannot be imported at all."""
    code = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {SERVER_ONLY!r}:
                    raise ModuleNotFoundError("blocked on an edge-only install: " + name, name=name)
        sys.meta_path.insert(0, Block())
        from parkwatch.cli import main
        for argv in (["--help"], ["edge", "--help"], ["edge", "run", "--help"], ["edge", "doctor", "--help"]):
            try:
                main(argv)
            except SystemExit as e:
                assert e.code == 0, (argv, e.code)
        assert main(["api"]) == 2  # says to install the server side instead of a traceback
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Provision, check and run the edge agent" in proc.stdout
    assert "pip install 'parkwatch[server]'" in proc.stderr


def test_console_script_runs() -> None:
    proc = subprocess.run(["parkwatch", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("parkwatch ")


def test_a_command_that_loaded_duckdb_exits_with_its_status_and_output(tmp_path: Path) -> None:
    import duckdb

    from storage.duckdb_schema import ddl

    db = tmp_path / "p.duckdb"
    con = duckdb.connect(str(db))
    for stmt in ddl():
        con.execute(stmt)
    con.close()
    config = tmp_path / "api.toml"
    config.write_text(
        f'[api]\nregistry_path = "{tmp_path / "reg.sqlite"}"\n[backend]\ntype = "duckdb"\npath = "{db}"\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "parkwatch", "api", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The process ends without the interpreter's finaliser: the status and the printed output
    # must still come through (the demo test checks that the bindings' shutdown noise is gone).
    assert proc.returncode == 0, proc.stderr
    assert "config, backend and registry OK" in proc.stdout
