"""``parkwatch sites import`` and ``parkwatch sites list`` against a registry file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from parkwatch.cli import main
from tests.api.conftest import P1_BOUNDARY
from tests.api.sites_data import SITES_CSV


def test_import_reports_bad_lines_and_list_finds_sites_near_a_park(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry.sqlite"
    csv_file = tmp_path / "sites.csv.gz"
    csv_file.write_bytes(gzip.compress(SITES_CSV.encode()))
    assert main(["sites", "import", "--registry", str(registry), str(csv_file)]) == 0
    out = capsys.readouterr()
    assert "6 sites added, 0 replaced, 4 rows refused (of 10)" in out.out
    assert [ln.split(":")[1] for ln in out.err.splitlines()] == ["7", "8", "9", "10"]
    boundary = tmp_path / "p1.geojson"
    boundary.write_text(json.dumps({"type": "Polygon", "coordinates": [P1_BOUNDARY]}))
    assert main(["park", "create", "p1", "--registry", str(registry), "--boundary", str(boundary)]) == 0
    capsys.readouterr()
    assert main(["sites", "list", "--registry", str(registry), "--park", "p1"]) == 0
    near = json.loads(capsys.readouterr().out)["features"]
    assert sorted(f["properties"]["cell"] for f in near) == [2000, 2001, 3000, 4000, 5000]
    assert main(["sites", "list", "--registry", str(registry)]) == 0
    assert len(json.loads(capsys.readouterr().out)["features"]) == 6


def test_import_of_a_file_without_good_rows_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("radio,mcc\nLTE,452\n")
    assert main(["sites", "import", "--registry", str(tmp_path / "r.sqlite"), str(bad)]) == 2
    assert "lacks the OpenCelliD column(s) net" in capsys.readouterr().err
    bad.write_text("LTE,452,4\n")
    assert main(["sites", "import", "--registry", str(tmp_path / "r.sqlite"), str(bad)]) == 1
    assert (
        main(["sites", "import", "--registry", str(tmp_path / "r.sqlite"), str(tmp_path / "none.csv")]) == 2
    )
