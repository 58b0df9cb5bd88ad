"""``parkwatch coverage predict`` and ``parkwatch coverage plan``: predicted coverage and survey plans
from the store the API reads (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HELP = "Predicted coverage with intervals and validation; survey plans as GeoJSON or GPX."


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="coverage_command", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument(
            "--config", metavar="FILE", help="API settings (TOML): the [backend] to read and the parks"
        )
        p.add_argument("--park", help="park id (default: every park)")
        p.add_argument("--operator", help="operator name, any letter case")
        p.add_argument("--tech", choices=["LTE", "NR", "UMTS", "GSM"], help="radio technology")
        p.add_argument(
            "--from",
            dest="start",
            metavar="TIME",
            help="window start, ISO 8601 (default: to - default window)",
        )
        p.add_argument("--to", dest="end", metavar="TIME", help="window end, ISO 8601 (default: now)")
        p.add_argument("--resolution", type=int, help="H3 resolution (default from the config)")
        return p

    p = action("predict", "Print the predicted layer of each park, operator and technology (GeoJSON).")
    p.add_argument(
        "--summary", action="store_true", help="print one line per layer with its validation instead"
    )
    p.set_defaults(func=_predict)
    p = action("plan", "Plan where to survey next: waypoints and a route per layer.")
    p.add_argument("--waypoints", type=int, default=25, help="waypoints per plan (default: %(default)s)")
    p.add_argument("--gpx", metavar="FILE", help="write the plan as GPX 1.1 (for drive-test apps)")
    p.add_argument("--geojson", metavar="FILE", help="write the plan as GeoJSON")
    p.set_defaults(func=_plan)


def _fail(message: str) -> int:
    print(f"parkwatch coverage: {message}", file=sys.stderr)
    return 2


def _time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--{what} {text!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _open(args: argparse.Namespace) -> tuple[Any, Any, Any, int, str]:
    """(prediction service, scope, backend, resolution, max_class) for the arguments."""
    from analytics.signal import DEFAULT_PROFILE
    from api.cache import ReadCache
    from api.cli import build_backend
    from api.services.coverage import CoverageService
    from api.services.prediction import PredictionService
    from contract.ids import ID, NAME
    from settings.api import ApiSettings
    from settings.loader import load_settings
    from storage.places import Places
    from storage.query import Scope

    settings = load_settings(ApiSettings, args.config)
    if args.park is not None and not ID.is_valid(args.park):
        raise ValueError(f"--park {args.park[:64]!r} is not a park id: use {ID.rule}")
    if args.operator is not None and not NAME.is_valid(args.operator):
        raise ValueError(f"--operator {args.operator[:64]!r} is not an operator name: use {NAME.rule}")
    if args.tech is not None and args.tech not in DEFAULT_PROFILE.techs:
        raise ValueError(f"--tech must be one of {sorted(DEFAULT_PROFILE.techs)}")
    cov = settings.coverage
    res = cov.default_resolution if args.resolution is None else args.resolution
    if not cov.min_resolution <= res <= cov.ingest_resolution:
        raise ValueError(f"--resolution must be between {cov.min_resolution} and {cov.ingest_resolution}")
    end = _time(args.end, "to") or datetime.now(UTC)
    start = _time(args.start, "from") or end - timedelta(days=cov.default_window_days)
    if start >= end:
        raise ValueError("--from must be before --to")
    backend = build_backend(settings)
    registry_parks = None
    if settings.api.registry_path != ":memory:" and Path(settings.api.registry_path).exists():
        places = Places(settings.api.registry_path)
        try:
            stored = {p.id: p.boundary for p in places.parks()}
        finally:
            places.close()
        registry_parks = lambda: stored  # noqa: E731
    coverage = CoverageService(settings, backend, ReadCache(0.0), registry_parks=registry_parks)
    scope = Scope(
        parks=None if args.park is None else (args.park,),
        start=start,
        end=end,
        operator=args.operator,
        tech=args.tech,
    )
    return PredictionService(coverage), scope, backend, res, cov.dead_zone_max_class


def _predict(args: argparse.Namespace) -> int:
    from api.services.prediction import pooled_validation

    try:
        service, scope, backend, res, max_class = _open(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        layers = service.layers(scope, res, max_class)
    finally:
        backend.close()
    if not layers:
        return _fail("no park, operator and technology in this window has enough measured cells to predict from; "
                     "widen --from/--to or survey first")  # fmt: skip
    if args.summary:
        for layer in layers:
            m, v = layer.meta(), layer.validation.as_dict()
            print(
                f"{m['park']} {m['operator']} {m['tech']}: {m['predicted_cells']} cells predicted "
                f"{m['classes']}; validation RMSE {v['rmse_db']} dB (IDW {v['idw_rmse_db']} dB), "
                f"bias {v['bias_db']} dB, 90 % interval held {v['interval_coverage']}"
            )
        return 0
    print(
        json.dumps(
            {
                "type": "FeatureCollection",
                "validation": pooled_validation(layers).as_dict(),
                "layers": [{**layer.meta(), "validation": layer.validation.as_dict()} for layer in layers],
                "features": [f for layer in layers for f in layer.features()],
            }
        )
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    from analytics.survey_plan import to_geojson, to_gpx

    if not 1 <= args.waypoints <= 200:
        return _fail("--waypoints must be between 1 and 200")
    try:
        service, scope, backend, res, max_class = _open(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        plans = service.plans(scope, res, max_class, args.waypoints)
    finally:
        backend.close()
    if not plans:
        return _fail("no park, operator and technology in this window has enough measured cells to plan from; "
                     "survey first or widen --from/--to")  # fmt: skip
    try:
        if args.gpx:
            Path(args.gpx).write_text(to_gpx(plans), encoding="utf-8")
        if args.geojson:
            Path(args.geojson).write_text(json.dumps(to_geojson(plans)), encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write the plan: {exc}")
    for plan in plans:
        s = plan.summary()
        print(
            f"{s['park']} {s['operator']} {s['tech']}: {s['waypoints']} waypoints of {s['candidates']} candidates, "
            f"route {s['route_length_m'] / 1000:.2f} km, expected gain {s['expected_gain_m2'] / 1e4:.2f} ha"
        )
    for path in (args.gpx, args.geojson):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 0
