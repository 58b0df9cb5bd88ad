"""``parkwatch alarms``: alarm rules and alarm instances in the registry file, from a shell.

Standard library imports only at module level (see :mod:`parkwatch.cli`). The command works on
the same file as the API (``[api] registry_path`` of ``--config``, or ``--registry``); a running
API picks up a rule change at its next evaluation. Actions are recorded under ``--by`` (default:
the login name), as the API records the key's name.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

HELP = "Alarm rules (add, edit, enable, disable, delete) and alarms (list, ack, shelve, unshelve, kpis)."

RULE_TYPES = (
    "threshold",
    "rate_of_change",
    "state",
    "gateway_offline",
    "backlog_growing",
    "loss_above",
    "uplink_rsrp_below",
    "new_dead_zone",
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="API settings (TOML): the registry is its [api] registry_path"
    )
    p.add_argument("--registry", metavar="FILE", help="the registry file itself (instead of --config)")


def _rule_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    d: dict[str, Any] = (
        {
            "type": "threshold",
            "op": ">",
            "threshold": 0.0,
            "deadband": 0.0,
            "duration": 60,
            "priority": "medium",
        }
        if defaults
        else {}
    )
    p.add_argument("--type", choices=RULE_TYPES, default=d.get("type"), help="rule type (default: threshold)")
    p.add_argument("--kind", help="reading kind of threshold / rate rules, e.g. machine")
    p.add_argument("--field", help="numeric field of that kind, e.g. spindle_temp_c")
    p.add_argument(
        "--op", choices=(">", ">=", "<", "<="), default=d.get("op"), help="comparison (default: >)"
    )
    p.add_argument(
        "--threshold", type=float, default=d.get("threshold"), help="threshold in the field's unit"
    )
    p.add_argument(
        "--deadband", type=float, default=d.get("deadband"), help="hysteresis: clear only this far back"
    )
    p.add_argument(
        "--duration", type=int, default=d.get("duration"), metavar="S", help="seconds the condition must hold"
    )
    p.add_argument(
        "--state", choices=("off", "idle", "running", "fault", "setup"), help="machine state (state rules)"
    )
    p.add_argument("--priority", choices=("low", "medium", "high", "critical"), default=d.get("priority"))
    p.add_argument("--park", help="only this park")
    p.add_argument("--gw", help="only this gateway")
    p.add_argument("--dev", help="only this device")
    p.add_argument("--message", help="alarm text (default: generated)")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    rules = sub.add_parser(
        "rules", help="list and edit alarm rules", description="List and edit alarm rules."
    )
    rsub = rules.add_subparsers(dest="rules_action", metavar="ACTION", required=True)
    p = rsub.add_parser("list", help="every rule (JSON lines)")
    _common(p)
    p.set_defaults(func=_rules_list)
    p = rsub.add_parser("add", help="create a rule", description="Create an alarm rule (see docs/alarms.md).")
    _common(p)
    p.add_argument("id", help="rule id")
    _rule_options(p, defaults=True)
    p.set_defaults(func=_rules_put, create=True)
    p = rsub.add_parser("set", help="change a rule (unset options keep their value)")
    _common(p)
    p.add_argument("id")
    _rule_options(p, defaults=False)
    p.set_defaults(func=_rules_put, create=False)
    for name, text in (
        ("enable", "enable a rule"),
        ("disable", "disable a rule (its alarms clear)"),
        ("delete", "delete a rule"),
    ):
        p = rsub.add_parser(name, help=text, description=text)
        _common(p)
        p.add_argument("id")
        p.set_defaults(func=_rules_switch, switch=name)

    p = sub.add_parser("list", help="alarm instances (JSON lines), open ones first")
    _common(p)
    p.add_argument("--park")
    p.add_argument("--state", help="only this state, or 'open'")
    p.set_defaults(func=_list)
    p = sub.add_parser("ack", help="acknowledge an alarm")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment")
    p.add_argument("--by", default=None, help="who acknowledges (default: the login name)")
    p.set_defaults(func=_act, what="ack")
    p = sub.add_parser("shelve", help="shelve an alarm for some minutes, with a reason")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("--minutes", type=int, required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default=None)
    p.set_defaults(func=_act, what="shelve")
    p = sub.add_parser("unshelve", help="end a shelving early")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("--by", default=None)
    p.set_defaults(func=_act, what="unshelve")
    p = sub.add_parser("kpis", help="ISA-18.2 alarm KPIs over the last hours (JSON)")
    _common(p)
    p.add_argument("--park")
    p.add_argument("--hours", type=float, default=24.0, help="window up to now (default: 24)")
    p.set_defaults(func=_kpis)


def _fail(message: str) -> int:
    print(f"parkwatch alarms: {message}", file=sys.stderr)
    return 2


def _store(args: argparse.Namespace) -> Any:
    """The alarm store of ``--registry`` or ``--config``, or what is wrong (a message)."""
    import sqlite3

    from settings import ConfigError, load_settings
    from settings.api import ApiSettings
    from storage.alarm_store import AlarmStore

    if not args.registry and not args.config:
        return "give --config FILE (the API's settings) or --registry FILE"
    try:
        path = args.registry or load_settings(ApiSettings, args.config).api.registry_path
        return AlarmStore(path)
    except (ConfigError, OSError, sqlite3.Error) as exc:
        return f"{exc}: check --config / --registry"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rules_list(args: argparse.Namespace) -> int:
    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    for r in store.rules():
        print(json.dumps({"id": r.id, "enabled": r.enabled, "origin": r.origin, **r.body}, sort_keys=True))
    return 0


def _rules_put(args: argparse.Namespace) -> int:
    from api.alarms.engine import decode_rule, rule_body

    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    old = store.rule(args.id)
    if args.create and old is not None:
        return _fail(f"rule {args.id!r} exists: use `parkwatch alarms rules set {args.id} ...`")
    if not args.create and old is None:
        return _fail(f"no rule {args.id!r}: `parkwatch alarms rules list` shows them")
    body: dict[str, Any] = dict(old.body) if old is not None else {"id": args.id}
    for opt, key in (("type", "type"), ("kind", "kind"), ("field", "field"), ("op", "op"), ("threshold", "threshold"),
                     ("deadband", "deadband"), ("duration", "duration_s"), ("state", "state"), ("priority", "priority"),
                     ("park", "park"), ("gw", "gw"), ("dev", "dev"), ("message", "message")):  # fmt: skip
        value = getattr(args, opt)
        if value is not None:
            body[key] = value
    enabled = True if old is None else old.enabled
    try:
        rule = decode_rule(body, enabled=enabled)
    except ValueError as exc:
        return _fail(f"invalid rule: {exc}")
    store.put_rule(rule.id, rule_body(rule), enabled=enabled, origin="api", now_ms=_now_ms())
    print(json.dumps({"id": rule.id, "enabled": enabled, **rule_body(rule)}, sort_keys=True))
    return 0


def _rules_switch(args: argparse.Namespace) -> int:
    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    old = store.rule(args.id)
    if old is None:
        return _fail(f"no rule {args.id!r}: `parkwatch alarms rules list` shows them")
    if args.switch == "delete":
        store.delete_rule(args.id)
    else:
        store.put_rule(
            args.id, old.body, enabled=args.switch == "enable", origin=old.origin, now_ms=_now_ms()
        )
    print(f"rule {args.id}: {args.switch}d")
    return 0


def _list(args: argparse.Namespace) -> int:
    from api.alarms.engine import view

    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    now = _now_ms()
    for a in sorted(store.alarms(since_ms=now - 86_400_000), key=lambda a: (a.instance.closed, -a.id)):
        v = view(a, now)
        if (args.park and v["park"] != args.park) or (
            args.state and (v["state"] != args.state if args.state != "open" else a.instance.closed)
        ):
            continue
        print(json.dumps(v, sort_keys=True))
    return 0


def _act(args: argparse.Namespace) -> int:
    from analytics.alarm_lifecycle import Acknowledge, InvalidTransition, Shelve, Unshelve
    from api.alarms.engine import AlarmEngine, view
    from settings.api import AlarmSettings

    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    by = args.by or getpass.getuser()
    now = _now_ms()
    engine = AlarmEngine(AlarmSettings(), store, _NoConditions())
    event: Any
    if args.what == "ack":
        event, kind, detail = (
            Acknowledge(by=by, at_ms=now, comment=args.comment),
            "acknowledged",
            args.comment or "",
        )
    elif args.what == "shelve":
        event = Shelve(by=by, at_ms=now, until_ms=now + args.minutes * 60_000, reason=args.reason)
        kind, detail = "shelved", args.reason
    else:
        event, kind, detail = Unshelve(by=by, at_ms=now), "unshelved", ""
    try:
        a = engine.act(args.id, event, kind, by, detail, now)
    except KeyError:
        return _fail(f"no alarm {args.id}: `parkwatch alarms list` shows them")
    except InvalidTransition as exc:
        return _fail(str(exc))
    print(json.dumps(view(a, now), sort_keys=True))
    return 0


class _NoConditions:
    """The CLI acts on alarms; it never evaluates rules."""

    def evaluate(self, *_: Any) -> dict[Any, Any]:
        return {}

    def machine_states(self, now_ms: int) -> dict[Any, str]:
        return {}


def _kpis(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from analytics.alarm_kpis import Activation, Standing, kpis

    store = _store(args)
    if isinstance(store, str):
        return _fail(store)
    end = _now_ms()
    start = end - int(args.hours * 3_600_000)
    acts = [
        Activation(rule_id=e.rule_id, park=e.park, source=e.source, priority=e.priority, at_ms=e.at_ms)
        for e in store.events(start_ms=start, end_ms=end, kind="activated")
        if not args.park or e.park == args.park
    ]
    standing = [
        Standing(alarm_id=a.id, rule_id=a.instance.rule_id, park=a.instance.park, source=a.instance.source,
                 raised_at_ms=a.instance.raised_at_ms)
        for a in store.alarms(open_only=True)
        if a.instance.active and (not args.park or a.instance.park == args.park)
    ]  # fmt: skip
    print(json.dumps(asdict(kpis(acts, standing, start_ms=start, end_ms=end)), indent=2, sort_keys=True))
    return 0
