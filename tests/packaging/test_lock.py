"""The lock (constraints.txt) decides every installed version: it covers pyproject.toml and keeps
the gateway install light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
SERVER_ONLY = {"fastapi", "uvicorn", "duckdb", "numpy", "pyarrow", "h3", "amqtt", "psutil"}
GATEWAY = {"msgspec", "paho-mqtt", "pymodbus", "pyserial", "parkwatch"}
"""Everything a gateway installs: the Modbus collector's pymodbus and pyserial are measured worth
their 1.7 MB (docs/edge-agent.md, "Modbus: why pymodbus"); nothing else comes along."""


def _locked() -> dict[str, list[tuple[str, str]]]:
    """Package name → [(version, environment marker)] as the lock states them."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in LOCK.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._\-]*)==([^\s;]+)\s*(?:;\s*(.*))?", line.strip())
        if m:
            pins.setdefault(canonicalize_name(m[1]), []).append((m[2], m[3] or ""))
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != "parkwatch"]


def test_every_dependency_is_locked_within_its_range() -> None:
    pins = _locked()
    reqs = _requirements()
    assert len(pins) > 50 and len(reqs) > 20
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run scripts/lock"
        for version, _marker in pins[name]:
            assert req.specifier.contains(version, prereleases=True), (
                f"constraints.txt pins {req.name}=={version}, outside {req.specifier}: run scripts/lock"
            )


def test_lock_pins_exact_versions_only() -> None:
    entries = [
        line.strip()
        for line in LOCK.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "--"))
    ]
    assert entries
    for entry in entries:
        assert "==" in entry and not re.search(r"[<>~!]=|[<>]", entry.split(";")[0]), entry


@pytest.mark.integration
def test_gateway_install_from_the_lock_pulls_no_server_dependencies(tmp_path: Path) -> None:
    """What `pip install -c constraints.txt '.[edge]'` would install, resolved by pip itself."""
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "-c", str(LOCK), f"{ROOT}[edge]"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    installed = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert installed.keys() == GATEWAY, installed
    assert not installed.keys() & SERVER_ONLY, installed
    pins = _locked()
    for name, version in installed.items():
        if name != "parkwatch":
            assert version in {v for v, _ in pins[name]}, (name, version)
