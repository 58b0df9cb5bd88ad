"""``parkwatch api``: command-line entry (standard library imports only at module level)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from settings.ports import PortBusyError, choose_port, listen_socket, port_arg, positive_int

if TYPE_CHECKING:
    from settings.api import ApiSettings
    from storage.query import QueryBackend

HELP = "Serve the HTTP API (coverage, dead zones, factory KPIs, fleet, provisioning)."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (PARKWATCH_* variables override it); see config/api.toml",
    )
    parser.add_argument("--host", help="listen address (overrides [api] host)")
    parser.add_argument(
        "--port", type=port_arg, help="listen port, 0 = any free port (overrides [api] port, default 8080)"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="uvicorn worker processes (InfluxDB backend only; overrides [api] workers)",
    )
    parser.add_argument(
        "--check", action="store_true", help="load the config, open backend and registry, then exit"
    )
    register_actions(parser, settings_of=_settings)
    parser.set_defaults(func=_run)


def _no_preparation(_args: argparse.Namespace, _registry: Any) -> None:
    return None


def register_actions(
    parser: argparse.ArgumentParser,
    *,
    settings_of: Callable[[argparse.Namespace], Any],
    before_broker_files: Callable[[argparse.Namespace, Any], None] = _no_preparation,
) -> None:
    """Add the registry actions (key-create, key-hash, mosquitto-files) to ``parser``.

    ``settings_of(args)`` loads the API settings those actions read (``parkwatch serve`` passes
    its own loader: its config file holds the API's tables too); ``before_broker_files(args,
    registry)`` runs before the broker files are written (``serve`` registers its ingester's
    account there).
    """
    sub = parser.add_subparsers(dest="api_command", metavar="ACTION")
    parser.set_defaults(settings_of=settings_of, before_broker_files=before_broker_files)

    def action(name: str, text: str, *, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        if config:
            # Also after the action (`api key-create --config FILE`); SUPPRESS keeps an earlier one.
            p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML settings file")
        return p

    k = action(
        "key-create",
        "Create an API key in the registry ([api] registry_path) and print it once; only its hash is stored.",
    )
    k.add_argument("--name", required=True, help="who holds the key")
    k.add_argument(
        "--role",
        default="viewer",
        choices=["viewer", "planner", "engineer", "admin"],
        help="what it may do (default: %(default)s)",
    )
    k.add_argument("--park", action="append", default=[], help="a park the key may see (repeat; none = all)")
    k.set_defaults(func=_key_create)
    r = action(
        "key-revoke", "Revoke an API key of the registry by name; it is refused from the next request on."
    )
    r.add_argument("name", help="the key's name (as given to key-create; GET /api/v1/keys lists them)")
    r.set_defaults(func=_key_revoke)
    g = action(
        "gateway-remove",
        "Remove a provisioned gateway and its MQTT credentials from the registry (its stored data stay); "
        "then regenerate the broker files with mosquitto-files.",
    )
    g.add_argument("gw", help="gateway id")
    g.add_argument("--park", required=True, help="the gateway's park")
    g.set_defaults(func=_gateway_remove)
    h = action(
        "key-hash",
        "Print the SHA-256 of a key read from stdin, for a [[keys]] entry in the config "
        '(e.g. echo "$KEY" | parkwatch api key-hash).',
        config=False,
    )
    h.set_defaults(func=_key_hash)
    m = action(
        "mosquitto-files",
        "Write Mosquitto's password file (mode 0600) and ACL from the registry's gateways and services.",
    )
    m.add_argument("--out-dir", required=True, metavar="DIR", help="where to write passwd and acl")
    m.set_defaults(func=_mosquitto_files)


def _settings(args: argparse.Namespace) -> Any:
    from settings.api import ApiSettings
    from settings.errors import ConfigError
    from settings.loader import load_settings

    try:
        return load_settings(ApiSettings, args.config)
    except ConfigError as exc:
        print(f"parkwatch api: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _key_create(args: argparse.Namespace) -> int:
    from api.auth import key_hash, new_key
    from api.errors import Conflict
    from api.registry import Registry

    settings = args.settings_of(args)
    if any(k.name == args.name for k in settings.keys):
        print(f"parkwatch api key-create: a key named {args.name!r} is defined in the config file; pick another name",
              file=sys.stderr)  # fmt: skip
        return 2
    key = new_key()
    reg = Registry(settings.api.registry_path)
    try:
        reg.add_key(sha256=key_hash(key), name=args.name, role=args.role, parks=tuple(sorted(set(args.park))))
    except Conflict as exc:
        print(f"parkwatch api key-create: {exc}", file=sys.stderr)
        return 2
    finally:
        reg.close()
    print(key)
    print(
        f"stored as {args.role} key {args.name!r} in {settings.api.registry_path} (mode 0600); "
        "it is shown only now",
        file=sys.stderr,
    )
    return 0


def _key_revoke(args: argparse.Namespace) -> int:
    from api.registry import Registry

    settings = args.settings_of(args)
    if any(k.name == args.name for k in settings.keys):
        print(f"parkwatch api key-revoke: key {args.name!r} is defined in the config file ([[keys]]): "
              "remove it there and restart the API", file=sys.stderr)  # fmt: skip
        return 2
    reg = Registry(settings.api.registry_path)
    try:
        removed = reg.delete_key(args.name)
    finally:
        reg.close()
    if not removed:
        print(
            f"parkwatch api key-revoke: no key named {args.name!r} in {settings.api.registry_path}",
            file=sys.stderr,
        )
        return 1
    print(f"revoked API key {args.name!r}; running API processes refuse it within their key cache's lifetime",
          file=sys.stderr)  # fmt: skip
    return 0


def _gateway_remove(args: argparse.Namespace) -> int:
    from api.errors import NotFound
    from api.registry import Registry

    settings = args.settings_of(args)
    reg = Registry(settings.api.registry_path)
    try:
        reg.delete_gateway(args.park, args.gw)
    except NotFound as exc:
        print(f"parkwatch api gateway-remove: {exc}", file=sys.stderr)
        return 1
    finally:
        reg.close()
    print(f"removed gateway {args.gw!r} of park {args.park!r}; now regenerate the broker files: "
          "parkwatch api --config ... mosquitto-files --out-dir DIR, and reload the broker", file=sys.stderr)  # fmt: skip
    return 0


def _key_hash(args: argparse.Namespace) -> int:
    from api.auth import key_hash

    key = sys.stdin.readline().strip()
    if not key:
        print(
            'parkwatch api key-hash: no key on stdin; pipe one in: echo "$KEY" | parkwatch api key-hash',
            file=sys.stderr,
        )
        return 2
    print(key_hash(key))
    return 0


def _mosquitto_files(args: argparse.Namespace) -> int:
    from api import mosquitto
    from api.registry import Registry

    settings = args.settings_of(args)
    reg = Registry(settings.api.registry_path)
    args.before_broker_files(args, reg)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = [(g.username, g.password_hash) for g in reg.gateways()] + reg.services()
    (out / "passwd").write_text(mosquitto.password_file(entries))
    (out / "passwd").chmod(0o600)
    prov = settings.provisioning
    (out / "acl").write_text(
        mosquitto.acl_file(
            [(g.park, g.gw) for g in reg.gateways()],
            topic_root=prov.topic_root,
            ingest_username=prov.ingest_username,
            services=[user for user, _ in reg.services()],
        )
    )
    reg.close()
    print(f"wrote {out / 'passwd'} ({len(entries)} accounts) and {out / 'acl'}; reload mosquitto (SIGHUP)")
    return 0


def build_backend(settings: ApiSettings) -> QueryBackend:
    """The query backend named by ``[backend] type``, built from that table."""
    from storage.query import load_backend

    return load_backend(settings.backend, ingest_resolution=settings.coverage.ingest_resolution)


def build_app(settings: Any, *, backend: Any, registry: Any, clock: Any = None) -> Any:
    """The API application, with the built-in dashboard unless ``[api] dashboard = false``;
    ``clock`` (a function returning the current UTC time) for a bench's simulated time."""
    from api.app import create_app
    from api.live import utc_now

    dashboard = None
    if settings.api.dashboard:
        from api.web import create_dashboard, dashboard_settings

        opts = settings.api
        dashboard = create_dashboard(
            dashboard_settings(opts.tile_url, opts.tile_attribution, opts.road_lines_file)
        )
    return create_app(
        settings, backend=backend, registry=registry, dashboard=dashboard, clock=clock or utc_now
    )


def app_from_env() -> Any:
    """Uvicorn factory for worker processes: settings from ``PARKWATCH_CONFIG``."""
    from api.registry import Registry
    from settings.api import ApiSettings
    from settings.loader import load_settings
    from settings.runtime import tune_gc_for_server

    settings = load_settings(ApiSettings)
    app = build_app(settings, backend=build_backend(settings), registry=Registry(settings.api.registry_path))
    tune_gc_for_server()
    return app


def _run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from api.registry import Registry
    from settings.errors import ConfigError
    from settings.runtime import setup_logging, tune_gc_for_server
    from storage.query import QueryError

    settings = _settings(args)
    setup_logging(settings.logging.level, settings.logging.format)
    try:
        backend = build_backend(settings)
    except QueryError as exc:
        print(f"parkwatch api: {exc}", file=sys.stderr)
        return 2
    registry = Registry(settings.api.registry_path)
    try:
        app = build_app(settings, backend=backend, registry=registry)
    except ConfigError as exc:
        print(f"parkwatch api: {exc}", file=sys.stderr)
        return 2
    if not settings.keys and not registry.api_keys():
        print(
            "parkwatch api: no API keys yet: create one with "
            "`parkwatch api --config FILE key-create --name you --role admin`",
            file=sys.stderr,
        )
    if args.check:
        try:
            backend.ping()
        except QueryError as exc:
            where = f" in {args.config}" if args.config else ""
            print(f"parkwatch api: {exc}; start it or fix [backend]{where}", file=sys.stderr)
            return 1
        print("config, backend and registry OK")
        return 0
    host = args.host or settings.api.host
    requested = settings.api.port if args.port is None else args.port
    option = "--port" if args.port is not None else "--port (or [api] port)"
    workers = args.workers or settings.api.workers
    if workers > 1:
        if not hasattr(settings.backend, "url"):
            print("parkwatch api: DuckDB allows one process per file: use --workers 1", file=sys.stderr)
            return 2
        try:
            # A configured port is meant, like one on the command line: busy is an error, not a detour.
            port = choose_port(host, requested, default=requested, what="API", option=option).port
        except PortBusyError as exc:
            print(f"parkwatch api: {exc}", file=sys.stderr)
            return 2
        if args.config:
            os.environ["PARKWATCH_CONFIG"] = str(Path(args.config).resolve())
        backend.close()
        print(_listening(host, port, dashboard=settings.api.dashboard), file=sys.stderr)
        uvicorn.run(
            "api.cli:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning"
        )
        return 0
    try:
        sock = listen_socket(host, requested, what="API", option=option)
    except PortBusyError as exc:
        print(f"parkwatch api: {exc}", file=sys.stderr)
        return 2
    tune_gc_for_server()
    # Listening before the line is printed: a client that reads it can connect at once.
    print(
        _listening(host, int(sock.getsockname()[1]), dashboard=settings.api.dashboard),
        file=sys.stderr,
        flush=True,
    )
    from settings.runtime import GRACEFUL_SHUTDOWN_S

    uvicorn.Server(
        uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    ).run(sockets=[sock])
    return 0


def _listening(host: str, port: int, *, dashboard: bool = True) -> str:
    shown = f"[{host}]" if ":" in host else host
    where = "dashboard /, OpenAPI /docs" if dashboard else "OpenAPI /docs"
    return f"parkwatch api: listening on http://{shown}:{port} ({where}; Ctrl-C stops)"
