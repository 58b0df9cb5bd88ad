"""``parkwatch sites``: import OpenCelliD cell-site lists into the registry file, and list them.

Standard library imports only at module level (see :mod:`parkwatch.cli`). The sites go to the
registry the API serves (``[api] registry_path`` of ``--config``, or ``--registry``), next to the
parks; ``GET /api/v1/sites`` and the dead zones' nearest site read them from there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "Import cell sites (OpenCelliD CSV) into the registry and list them."


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="API settings (TOML): the registry is its [api] registry_path"
    )
    p.add_argument("--registry", metavar="FILE", help="the registry file itself (instead of --config)")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "import",
        help="import an OpenCelliD CSV (header optional; .gz read as gzip)",
        description="Store the good rows of an OpenCelliD CSV; bad rows are listed with their line number.",
    )
    _common(p)
    p.add_argument("file", help="the CSV (radio,mcc,net,area,cell,unit,lon,lat,range,samples,...)")
    p.set_defaults(func=_import)
    p = sub.add_parser("list", help="list stored sites as GeoJSON (near one park with --park)")
    _common(p)
    p.add_argument(
        "--park", help="only the sites near this park (its boundary box plus [coverage] site_margin_m)"
    )
    p.set_defaults(func=_list)


def _fail(message: str) -> int:
    print(f"parkwatch sites: {message}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace) -> Any:
    from settings.api import ApiSettings
    from settings.loader import load_settings

    return load_settings(ApiSettings, args.config)


def _import(args: argparse.Namespace) -> int:
    import gzip

    from api.services.sites import store_sites
    from settings.errors import ConfigError
    from storage.cell_sites import CellSites, SiteFileError, parse_opencellid

    try:
        path = args.registry or _settings(args).api.registry_path
    except ConfigError as exc:
        return _fail(str(exc))
    opener: Any = gzip.open if args.file.endswith(".gz") else open
    try:
        with opener(args.file, "rt", encoding="utf-8-sig", newline="") as fh:
            parsed = parse_opencellid(fh)
    except SiteFileError as exc:
        return _fail(f"{args.file}: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    store = CellSites(path)
    try:
        report = store_sites(store, parsed)
    finally:
        store.close()
    for e in report.error_lines:
        print(f"{args.file}:{e['line']}: {e['reason']}", file=sys.stderr)
    if report.errors > len(report.error_lines):
        print(f"... and {report.errors - len(report.error_lines)} more bad rows", file=sys.stderr)
    print(
        f"{report.added} sites added, {report.replaced} replaced, {report.errors} rows refused "
        f"(of {report.rows}) in {path}"
    )
    return 0 if report.added + report.replaced > 0 else 1


def _list(args: argparse.Namespace) -> int:
    from settings.errors import ConfigError
    from storage.cell_sites import CellSites, bbox_around, operator_of
    from storage.places import Places

    try:
        settings = _settings(args)
    except ConfigError as exc:
        return _fail(str(exc))
    path = args.registry or settings.api.registry_path
    box = None
    if args.park:
        places = Places(path)
        try:
            park = places.park(args.park)
        finally:
            places.close()
        ring = (
            park.boundary
            if park is not None
            else next(
                (tuple(tuple(pt) for pt in p.boundary) for p in settings.parks if p.id == args.park), ()
            )
        )
        if not ring:
            return _fail(
                f"park {args.park!r} has no boundary: `parkwatch park update {args.park} --boundary FILE`"
            )
        box = bbox_around(ring, settings.coverage.site_margin_m)
    store = CellSites(path)
    try:
        sites = store.sites(box)
    finally:
        store.close()
    by_plmn = settings.coverage.operators_by_plmn
    features = [s.feature(operator_of(s, by_plmn)) for s in sites]
    print(json.dumps({"type": "FeatureCollection", "features": features}, indent=1))
    return 0
