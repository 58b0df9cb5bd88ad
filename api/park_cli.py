"""``parkwatch park`` and ``parkwatch gateway``: parks and gateway sites in the registry file.

Standard library imports only at module level (see :mod:`parkwatch.cli`). Both commands write the
registry the API serves (``[api] registry_path`` of ``--config``, or ``--registry``); a running
ingester with ``[ingest] registry_path`` set to the same file picks the change up within
``registry_refresh_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "Create, update, delete and list parks (id, name, boundary, time zone) in the registry."
GATEWAY_HELP = "Set, delete and list gateway sites (park, fixed position, description) in the registry."


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="API settings (TOML): the registry is its [api] registry_path"
    )
    p.add_argument("--registry", metavar="FILE", help="the registry file itself (instead of --config)")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (
        ("create", "create a park"),
        ("update", "change a park (unset options keep their value)"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        _common(p)
        p.add_argument("id", help="park id (as in MQTT topics)")
        p.add_argument("--name", help="display name")
        p.add_argument("--boundary", metavar="FILE", help="GeoJSON file with the park's Polygon")
        p.add_argument("--timezone", help="IANA time zone (default UTC), e.g. Asia/Ho_Chi_Minh")
        p.set_defaults(func=_park_put, create=name == "create")
    p = sub.add_parser("delete", help="delete a park and its gateway sites")
    _common(p)
    p.add_argument("id")
    p.set_defaults(func=_park_delete)
    p = sub.add_parser("list", help="list the parks (JSON)")
    _common(p)
    p.set_defaults(func=_park_list)


def register_gateway(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("set", help="create or replace a gateway's site")
    _common(p)
    p.add_argument("id", help="gateway id")
    p.add_argument("--park", required=True, help="the park it belongs to (create the park first)")
    p.add_argument("--lat", type=float, help="fixed position (WGS84 latitude); omit for a mobile gateway")
    p.add_argument("--lon", type=float, help="fixed position (WGS84 longitude)")
    p.add_argument("--description", default="", help="free text, e.g. where it is mounted")
    p.set_defaults(func=_gateway_set)
    p = sub.add_parser("delete", help="delete a gateway's site")
    _common(p)
    p.add_argument("id")
    p.set_defaults(func=_gateway_delete)
    p = sub.add_parser("list", help="list gateway sites (JSON)")
    _common(p)
    p.add_argument("--park", help="only this park's")
    p.set_defaults(func=_gateway_list)


def _fail(command: str, message: str) -> int:
    print(f"parkwatch {command}: {message}", file=sys.stderr)
    return 2


def _places(args: argparse.Namespace) -> Any:
    from settings import load_settings
    from settings.api import ApiSettings
    from storage.places import Places

    path = args.registry or load_settings(ApiSettings, args.config).api.registry_path
    return Places(path)


def _park_put(args: argparse.Namespace) -> int:
    from settings import ConfigError
    from storage.places import ParkRecord, PlaceError, boundary_from_geojson

    try:
        places = _places(args)
    except ConfigError as exc:
        return _fail("park", str(exc))
    try:
        old = places.park(args.id)
        if args.create and old is not None:
            return _fail("park", f"park {args.id!r} exists: use `parkwatch park update {args.id}`")
        if not args.create and old is None:
            return _fail("park", f"park {args.id!r} does not exist: use `parkwatch park create {args.id}`")
        boundary = old.boundary if old is not None else ()
        if args.boundary:
            try:
                with open(args.boundary, encoding="utf-8") as fh:
                    boundary = boundary_from_geojson(json.load(fh))
            except (OSError, json.JSONDecodeError) as exc:
                return _fail("park", f"cannot read the boundary {args.boundary}: {exc}")
        stored = places.put_park(
            ParkRecord(
                id=args.id,
                name=args.name if args.name is not None else (old.name if old else ""),
                boundary=boundary,
                timezone=args.timezone or (old.timezone if old else "UTC"),
            )
        )
    except PlaceError as exc:
        return _fail("park", str(exc))
    finally:
        places.close()
    print(json.dumps(stored.to_dict()))
    return 0


def _park_delete(args: argparse.Namespace) -> int:
    places = _places(args)
    try:
        if not places.delete_park(args.id):
            return _fail("park", f"park {args.id!r} does not exist (`parkwatch park list` shows them)")
    finally:
        places.close()
    print(f"park {args.id} deleted (its data stays in the store until retention removes it)")
    return 0


def _park_list(args: argparse.Namespace) -> int:
    places = _places(args)
    try:
        print(json.dumps([p.to_dict() for p in places.parks()], indent=1))
    finally:
        places.close()
    return 0


def _gateway_set(args: argparse.Namespace) -> int:
    from storage.places import GatewaySite, PlaceError

    places = _places(args)
    try:
        stored = places.put_gateway(
            GatewaySite(gw=args.id, park=args.park, lat=args.lat, lon=args.lon, description=args.description)
        )
    except PlaceError as exc:
        return _fail("gateway", str(exc))
    finally:
        places.close()
    print(json.dumps(stored.to_dict()))
    return 0


def _gateway_delete(args: argparse.Namespace) -> int:
    places = _places(args)
    try:
        if not places.delete_gateway(args.id):
            return _fail("gateway", f"gateway {args.id!r} has no site (`parkwatch gateway list` shows them)")
    finally:
        places.close()
    print(f"gateway site {args.id} deleted")
    return 0


def _gateway_list(args: argparse.Namespace) -> int:
    places = _places(args)
    try:
        print(json.dumps([g.to_dict() for g in places.gateways(args.park)], indent=1))
    finally:
        places.close()
    return 0
