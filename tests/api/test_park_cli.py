"""``parkwatch park`` and ``parkwatch gateway``: the registry file from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parkwatch.cli import main


def test_park_and_gateway_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = ["--registry", str(tmp_path / "registry.sqlite")]
    boundary = tmp_path / "b.geojson"
    boundary.write_text(
        json.dumps(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[106.3, 20.9], [106.4, 20.9], [106.4, 21.0]]],
                },
            }
        )
    )
    assert main(["park", "create", "hd-new", "--name", "New", "--boundary", str(boundary), *reg]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["timezone"] == "UTC" and len(made["boundary"]["coordinates"][0]) == 4  # closed ring
    assert main(["park", "create", "hd-new", *reg]) == 2
    assert "use `parkwatch park update hd-new`" in capsys.readouterr().err
    assert main(["park", "update", "hd-new", "--timezone", "Asia/Ho_Chi_Minh", *reg]) == 0
    updated = json.loads(capsys.readouterr().out)
    assert (updated["name"], updated["timezone"]) == ("New", "Asia/Ho_Chi_Minh")  # the name was kept
    assert (
        main(["gateway", "set", "gw-1", "--park", "elsewhere", "--lat", "20.9", "--lon", "106.3", *reg]) == 2
    )
    assert "create it first" in capsys.readouterr().err
    assert main(["gateway", "set", "gw-1", "--park", "hd-new", "--lat", "20.95", *reg]) == 2
    assert "both lat and lon" in capsys.readouterr().err
    assert (
        main(["gateway", "set", "gw-1", "--park", "hd-new", "--lat", "20.95", "--lon", "106.35", *reg]) == 0
    )
    capsys.readouterr()
    assert main(["gateway", "list", "--park", "hd-new", *reg]) == 0
    assert [g["gw"] for g in json.loads(capsys.readouterr().out)] == ["gw-1"]
    assert main(["park", "delete", "hd-new", *reg]) == 0
    capsys.readouterr()
    assert main(["park", "list", *reg]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["park", "delete", "hd-new", *reg]) == 2
    assert (tmp_path / "registry.sqlite").stat().st_mode & 0o077 == 0  # it also holds key hashes
