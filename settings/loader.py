"""Load one deployable's typed settings from a TOML file plus ``PARKWATCH_*`` environment overrides.

An override names a key path with double underscores: ``PARKWATCH_BROKER__PORT=1884`` sets
``[broker] port``. Its value is read as a TOML value when it parses as one (numbers, booleans,
arrays, quoted strings) and as a plain string otherwise.

One environment may serve several deployables: an override of a table that only another
deployable has (``PARKWATCH_SINK__TYPE`` when loading the API's settings) is left to that one;
a table that no deployable has is an error. An override of a union's ``type`` switches it,
leaving out the keys of the file that only the other type has.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec
import msgspec.inspect

from settings.errors import ConfigError

T = TypeVar("T", bound=msgspec.Struct)

ENV_PREFIX: Final = "PARKWATCH_"
_PLACEHOLDERS: Final = frozenset(
    {"change-me", "changeme", "change_me", "replace-me", "xxx", "todo", "secret"}
)
_SECRET_NAME: Final = re.compile(r"(password|token|secret|api_key)\Z")
_PATH_RE: Final = re.compile(r"`\$((?:\.[A-Za-z0-9_]+|\[\d+\])*)`")


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env(data: dict[str, Any], env: Mapping[str, str], prefix: str = ENV_PREFIX) -> list[str]:
    """Apply ``PARKWATCH_A__B=value`` overrides to ``data`` in place; return the keys applied."""
    applied: list[str] = []
    for name, raw in sorted(env.items()):
        if not name.startswith(prefix) or name == f"{prefix}CONFIG":
            continue
        path = [p.lower() for p in name[len(prefix) :].split("__") if p]
        if not path:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {'.'.join(path[:-1])} is not a table")
            node = child
        node[path[-1]] = _env_value(raw)
        applied.append(".".join(path))
    return applied


def _variant_fields(typ: Any, path: list[str], tag: Any) -> frozenset[str] | None:
    """The keys of the tagged union member at ``path`` (a table) whose tag is ``tag``.

    None when ``path`` is not a tagged union or no member has that tag.
    """
    info: Any = msgspec.inspect.type_info(typ)
    for name in path:
        if not isinstance(info, msgspec.inspect.StructType):
            return None
        field = next((f for f in info.fields if f.encode_name == name), None)
        if field is None:
            return None
        info = field.type
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    for member in members:
        if isinstance(member, msgspec.inspect.StructType) and member.tag is not None and member.tag == tag:
            return frozenset({str(member.tag_field), *(f.encode_name for f in member.fields)})
    return None


def switch_unions(typ: Any, data: dict[str, Any], applied: list[str]) -> list[str]:
    """Drop the keys of the other variant when an override switched a union's ``type``.

    ``PARKWATCH_SINK__TYPE=influxdb`` over a file whose ``[sink]`` is DuckDB's leaves ``path``
    in the table, which InfluxDB's sink does not know: the file's keys that the new type does
    not have are removed (keys set by other overrides stay, so a typo there is still an
    error). Returns the dropped keys, e.g. ``["sink.path"]``.
    """
    dropped: list[str] = []
    overridden = set(applied)
    for key in applied:
        *path, last = key.split(".")
        if last != "type" or not path:
            continue
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        known = _variant_fields(typ, path, node.get("type"))
        if known is None:
            continue
        for name in [k for k in node if k not in known and ".".join([*path, k]) not in overridden]:
            del node[name]
            dropped.append(".".join([*path, name]))
    return dropped


def _check_secrets(obj: Any, where: str, path: str = "") -> None:
    if isinstance(obj, msgspec.Struct):
        for field in obj.__struct_fields__:
            value = getattr(obj, field)
            key = f"{path}.{field}" if path else field
            if (
                isinstance(value, str)
                and _SECRET_NAME.search(field)
                and value.strip().lower() in _PLACEHOLDERS
            ):
                raise ConfigError(f"{where}: {key} is a placeholder ({value!r}); set a real secret")
            _check_secrets(value, where, key)
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            _check_secrets(item, where, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, item in obj.items():
            _check_secrets(item, where, f"{path}.{k}")


_MISSING_RE: Final = re.compile(r"Object missing required field `([^`]+)`")
_INVALID_RE: Final = re.compile(r"Invalid value (.+)")
_SEGMENT_RE: Final = re.compile(r"([A-Za-z0-9_]+)|\[(\d+)\]")
_UNKNOWN_RE: Final = re.compile(r"Object contains unknown field `([^`]+)`")


def _types_with_field(typ: Any, key: str, name: str) -> list[str]:
    """The tags of the union members at ``key`` (a plain path of tables) that have field ``name``."""
    info: Any = msgspec.inspect.type_info(typ)
    for part in (m.group(1) for m in _SEGMENT_RE.finditer(key) if m.group(1)):
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        field = next((f for f in info.fields if f.encode_name == part), None)
        if field is None:
            return []
        info = field.type
    if not isinstance(info, msgspec.inspect.UnionType):
        return []
    return sorted(
        str(t.tag)
        for t in info.types
        if isinstance(t, msgspec.inspect.StructType)
        and t.tag is not None
        and any(f.encode_name == name for f in t.fields)
    )


def _tags_at(typ: Any, key: str) -> list[str]:
    """The tag values a tagged union accepts at ``key`` (e.g. ``collectors[0].type``), if any."""
    info: Any = msgspec.inspect.type_info(typ)
    parts = [m.group(1) for m in _SEGMENT_RE.finditer(key) if m.group(1)]
    if not parts:
        return []
    *path, last = parts
    for name in path:
        while isinstance(info, msgspec.inspect.ListType | msgspec.inspect.Metadata):
            info = info.item_type if isinstance(info, msgspec.inspect.ListType) else info.type
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        field = next((f for f in info.fields if f.encode_name == name), None)
        if field is None:
            return []
        info = field.type
    while isinstance(info, msgspec.inspect.ListType | msgspec.inspect.Metadata):
        info = info.item_type if isinstance(info, msgspec.inspect.ListType) else info.type
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return sorted(
        str(t.tag)
        for t in members
        if isinstance(t, msgspec.inspect.StructType) and t.tag is not None and t.tag_field == last
    )


def _explain(typ: Any, key: str, text: str) -> str:
    """The validation message in plain words: which key is missing, which values are valid."""
    missing = _MISSING_RE.fullmatch(text)
    if missing:
        name = f"{key}.{missing.group(1)}" if key else missing.group(1)
        return f"required key {name} is missing"
    unknown = _UNKNOWN_RE.fullmatch(text)
    if unknown and "[" not in key:
        owners = _types_with_field(typ, key, unknown.group(1))
        if owners:
            env = f"{ENV_PREFIX}{'__'.join(key.upper().split('.'))}__TYPE"
            return (
                f"{key}: {unknown.group(1)} is a key of type {' or '.join(owners)}, not of the type set here; "
                f'set {key}.type = "{owners[0]}" (or {env}={owners[0]})'
            )
    invalid = _INVALID_RE.fullmatch(text)
    if invalid:
        tags = _tags_at(typ, key)
        if tags:
            return f"{key}: {invalid.group(1)} is not a known type; valid types: {', '.join(tags)}"
    return f"{key or 'top level'}: {text}"


def settings_from_dict(typ: type[T], data: Mapping[str, Any], *, where: str = "settings") -> T:
    """Convert a plain table into ``typ``, raising :class:`ConfigError` that names the bad key."""
    try:
        obj = msgspec.convert(dict(data), typ, strict=False)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = _PATH_RE.search(msg)
        key = m.group(1).lstrip(".") if m else ""
        text = re.sub(r"\s*-\s*at\s*`\$[^`]*`", "", msg)
        raise ConfigError(f"{where}: {_explain(typ, key, text)}") from exc
    _check_secrets(obj, where)
    return obj


def _tables(typ: Any) -> frozenset[str]:
    info = msgspec.inspect.type_info(typ)
    if not isinstance(info, msgspec.inspect.StructType):
        return frozenset()
    return frozenset(f.encode_name for f in info.fields)


def _other_deployables_tables(typ: Any) -> frozenset[str]:
    """Top-level tables of the other deployables' settings that ``typ`` does not have.

    One environment often serves several deployables (an env file, a shell that starts the API
    and the ingesters): ``PARKWATCH_SINK__TYPE`` is the ingester's and no typo in the API's.
    """
    from settings.api import ApiSettings
    from settings.edge import EdgeSettings
    from settings.ingest import IngestSettings
    from settings.serve import ServeSettings

    every = frozenset().union(
        *(_tables(t) for t in (ApiSettings, EdgeSettings, IngestSettings, ServeSettings))
    )
    return every - _tables(typ)


def load_settings(
    typ: type[T],
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> T:
    """Load settings of type ``typ`` from ``path`` (optional) and the environment.

    Raises:
        ConfigError: the file is missing or not TOML, or a key has an invalid value.
    """
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    where = f"no config file given (pass --config FILE or set {ENV_PREFIX}CONFIG)"
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = environ[f"{ENV_PREFIX}CONFIG"]
    if path is not None:
        p = Path(path)
        where = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {p} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    others = _other_deployables_tables(typ)
    own_env = {
        name: value
        for name, value in environ.items()
        if not (name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].split("__")[0].lower() in others)
    }
    applied = apply_env(data, own_env)
    dropped = switch_unions(typ, data, applied)
    if applied:
        where += f" (with environment overrides of {', '.join(applied)}"
        where += f"; the other type's {', '.join(dropped)} left out)" if dropped else ")"
    return settings_from_dict(typ, data, where=where)
