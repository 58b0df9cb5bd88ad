"""Write the dashboards' JSON (``python -m dashboards.build``) or check it is in sync (``--check``).

The dashboards are code (one module per dashboard); the JSON in ``dashboards/json/`` is what
Grafana's file provisioning loads and is checked in, so a deployment needs no Python.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, cast

DashboardName = Literal["park-operations", "coverage", "gateway-fleet"]

DASHBOARDS: Final[dict[DashboardName, str]] = {
    "park-operations": "dashboards.park_operations:build",
    "coverage": "dashboards.coverage:build",
    "gateway-fleet": "dashboards.gateway_fleet:build",
}
"""Dashboard file name (without ``.json``) → builder, as a lazy ``module:function`` string."""

JSON_DIR: Final = Path(__file__).parent / "json"


def load_builder(spec: str) -> Callable[[], dict[str, Any]]:
    """Import the builder named by ``module:function``."""
    module_name, _, attr = spec.partition(":")
    return cast(Callable[[], dict[str, Any]], getattr(importlib.import_module(module_name), attr))


def render(name: DashboardName) -> str:
    """The JSON text of one dashboard, as checked in (sorted keys, 2-space indent, final newline)."""
    return json.dumps(load_builder(DASHBOARDS[name])(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def out_of_sync(json_dir: Path = JSON_DIR) -> list[str]:
    """Names of dashboards whose file in ``json_dir`` is missing or differs from the code."""
    stale: list[str] = []
    for name in DASHBOARDS:
        path = json_dir / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            stale.append(name)
    return stale


def write_all(json_dir: Path = JSON_DIR) -> list[Path]:
    """(Re)write every dashboard's JSON file; return the paths."""
    json_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = json_dir / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards.build",
        description="Generate the Grafana dashboard JSON files from the dashboard modules.",
    )
    parser.add_argument("--out", type=Path, default=JSON_DIR, help=f"output directory (default: {JSON_DIR})")
    parser.add_argument(
        "--check", action="store_true", help="only check that the files are up to date (exit 1 if not)"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_sync(args.out)
        if stale:
            print(
                f"out of date: {', '.join(stale)}; run `python -m dashboards.build` and commit the JSON",
                file=sys.stderr,
            )
            return 1
        print(f"{len(DASHBOARDS)} dashboards up to date in {args.out}")
        return 0
    for path in write_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
