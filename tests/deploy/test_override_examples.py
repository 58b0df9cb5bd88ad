"""The environment-override examples of the README and docs/*.md run as written: each
``PARKWATCH_...=... parkwatch ingest|api|serve --config config/...`` example loads its sample
config with ``--check`` (the API's against a real InfluxDB, at the example's URL's port)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.doc_commands import REPO
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

_EXAMPLE_RE = re.compile(
    r"`((?:PARKWATCH_\w+=\S+\s+)+parkwatch\s+(?:ingest|api|serve)\s+--config\s+config/[\w.]+)`"
)


def _examples() -> list[str]:
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        found += [" ".join(m.group(1).split()) for m in _EXAMPLE_RE.finditer(doc.read_text())]
    return found


def test_the_docs_hold_the_override_examples() -> None:
    examples = _examples()
    assert any("PARKWATCH_SINK__TYPE=influxdb parkwatch ingest" in e for e in examples), examples
    assert any("PARKWATCH_BACKEND__TYPE=influxdb" in e and "parkwatch api" in e for e in examples), examples


@pytest.mark.parametrize("example", _examples())
def test_override_example_loads(example: str, influxdb: ServerProcess, tmp_path: Path) -> None:
    # In a directory of its own (the API's --check creates its registry there), with the samples.
    (tmp_path / "config").symlink_to(REPO / "config")
    words = example.replace(":8086", f":{influxdb.port}").split()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "parkwatch"
    done = subprocess.run(
        [sys.executable, "-m", "parkwatch", *words[1:], "--check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (example, done.stdout, done.stderr)
    if "PARKWATCH_SINK__TYPE=influxdb" in example:
        assert '"type": "influxdb"' in done.stdout
    if "parkwatch api" in example:
        assert "config, backend and registry OK" in done.stdout
