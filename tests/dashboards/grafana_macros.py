"""What Grafana's InfluxQL datasource does to a query before sending it, for the query tests.

Covers the macros and variable formats the parkwatch dashboards use: ``$timeFilter``,
``$__interval``/``$interval``/``$__interval_ms``, ``$__range_s``, ``$__from``/``$__to`` and
template variables as ``$name``, ``${name}`` or ``[[name]]``. Multi-value and "All" selections
are regex-escaped and joined as ``(a|b)`` (Grafana's ``interpolateQueryExpr``). Any other
``$name`` raises, so a typo in a dashboard cannot slip through as literal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

_VAR_RE: Final = re.compile(r"\$(\w+)|\[\[(\w+)\]\]|\$\{(\w+)(?::(\w+))?\}")
_REGEX_SPECIAL: Final = re.compile(r"[\\^$*+?.()|{}\[\]/]")

# Grafana's rangeutil.roundInterval: (upper bound of the raw interval in ms, rounded interval in ms).
_ROUNDING: Final[tuple[tuple[int, int], ...]] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (24_300_000, 21_600_000),
    (64_800_000, 43_200_000),
    (604_800_000, 86_400_000),
)


def round_interval_ms(raw_ms: float) -> int:
    for upper, rounded in _ROUNDING:
        if raw_ms <= upper:
            return rounded
    return 604_800_000


def format_duration(ms: int) -> str:
    """``10s``, ``1m``, ``500ms``: the InfluxQL duration Grafana puts in ``$__interval``."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex``: backslash before regex metacharacters and ``/``."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time range and panel width, from which the interval follows."""

    from_ms: int
    to_ms: int
    max_data_points: int = 800
    min_interval_ms: int = 10_000
    """The datasource's ``timeInterval`` (10s in the provisioned datasource)."""

    @property
    def interval_ms(self) -> int:
        raw = (self.to_ms - self.from_ms) / self.max_data_points
        return max(round_interval_ms(raw), self.min_interval_ms)


def format_value(values: Sequence[str], *, multi: bool) -> str:
    """A variable's value as Grafana writes it into an InfluxQL regex."""
    if not multi:
        return escape_regex(values[0])
    escaped = [escape_regex(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(query: str, time_range: TimeRange, variables: Mapping[str, str]) -> str:
    """Expand macros and (already formatted) template variables in ``query``.

    Raises:
        KeyError: a ``$name`` that is neither a known macro nor in ``variables``.
    """
    interval_ms = time_range.interval_ms
    builtins = {
        "timeFilter": f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms",
        "__interval": format_duration(interval_ms),
        "interval": format_duration(interval_ms),
        "__interval_ms": str(interval_ms),
        "__range_s": str((time_range.to_ms - time_range.from_ms) // 1000),
        "__range_ms": str(time_range.to_ms - time_range.from_ms),
        "__from": str(time_range.from_ms),
        "__to": str(time_range.to_ms),
    }

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        raise KeyError(f"unknown variable or macro ${name} in {query!r}")

    return _VAR_RE.sub(repl, query)


_URL_VAR_RE: Final = re.compile(r"\$\{(\w+)(?::([\w:]+))?\}")


def interpolate_url_value(value: str, time_range: TimeRange, variables: Mapping[str, str]) -> str:
    """Expand a URL parameter of an Infinity query as Grafana does for a single-value variable.

    Only the forms the dashboards use: ``${name}`` (the raw value) and ``${__from:date:iso}`` /
    ``${__to:date:iso}`` (ISO 8601, UTC). Anything else raises ``KeyError``.
    """
    from datetime import UTC, datetime

    def repl(m: re.Match[str]) -> str:
        name, fmt = m.group(1), m.group(2)
        if name in ("__from", "__to") and fmt == "date:iso":
            ms = time_range.from_ms if name == "__from" else time_range.to_ms
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        if fmt is None and name in variables:
            return variables[name]
        raise KeyError(f"unknown variable or format ${{{m.group(0)}}} in {value!r}")

    return _URL_VAR_RE.sub(repl, value)
