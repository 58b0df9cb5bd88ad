"""InfluxQL fragments shared by the dashboards: filters, signal classes, coverage indicators.

Queries follow the layout of :mod:`storage.schema`: one measurement per reading kind, tags
``park``, ``gw``, ``dev``, ``h3`` and the kind's dimensions, everything else a field. They only
use InfluxQL that InfluxDB 1.6 already runs (subqueries, math functions, multi-source ``FROM``),
so they work on 1.x, on 2.x through the v1 API and on 3.x's InfluxQL.

Template variables are matched as regular expressions (``"park" =~ /^$park$/``): Grafana
expands a multi-value or "All" selection to ``(a|b|c)``, regex-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from analytics.signal import CLASS_NAMES, DEFAULT_PROFILE, SignalProfile

TIME_FILTER: Final = "$timeFilter"
INTERVAL: Final = "$__interval"

CLASS_COLORS: Final[dict[str, str]] = {
    "none": "dark-red",
    "poor": "orange",
    "fair": "yellow",
    "good": "green",
    "excellent": "dark-green",
}
"""Colour of each signal class on maps and charts (worst is red)."""


def q(name: str) -> str:
    """A double-quoted identifier (measurement, tag or field)."""
    if '"' in name or "\\" in name:
        raise ValueError(f"identifier {name!r} needs escaping; parkwatch names never do")
    return f'"{name}"'


def var_match(tag: str, var: str) -> str:
    """``"tag" =~ /^$var$/``: the tag matches the (possibly multi-value) variable."""
    return f"{q(tag)} =~ /^${var}$/"


def where(*clauses: str, time: bool = True) -> str:
    """``WHERE $timeFilter AND clause AND ...``."""
    parts = [TIME_FILTER] if time else []
    parts.extend(c for c in clauses if c)
    if not parts:
        return ""
    return "WHERE " + " AND ".join(parts)


def group_by_time(*tags: str, fill: str = "null") -> str:
    """``GROUP BY time($__interval), "tag", ... fill(...)``."""
    keys = ", ".join([f"time({INTERVAL})", *(q(t) for t in tags)])
    return f"GROUP BY {keys} fill({fill})"


def group_by(*tags: str) -> str:
    return "GROUP BY " + ", ".join(q(t) for t in tags) if tags else ""


def regex_alternatives(values: Sequence[str]) -> str:
    """``/^(a|b)$/`` for literal, id-like values."""
    for v in values:
        if not v.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"value {v!r} is not id-like")
    return "/^(" + "|".join(values) + ")$/"


@dataclass(frozen=True, slots=True)
class TechGroup:
    """Technologies that share the same RSRP thresholds in a signal profile."""

    techs: tuple[str, ...]
    rsrp_lower_dbm: tuple[float, float, float, float]
    """Lower bounds of poor, fair, good, excellent (see :mod:`analytics.signal`)."""

    @property
    def tech_match(self) -> str:
        return f"{q('tech')} =~ {regex_alternatives(self.techs)}"

    @property
    def service_floor_dbm(self) -> float:
        """Below this RSRP a sample is in class ``none`` (no usable service)."""
        return self.rsrp_lower_dbm[0]


def tech_groups(profile: SignalProfile = DEFAULT_PROFILE) -> list[TechGroup]:
    """Technologies grouped by identical thresholds, in profile order."""
    groups: dict[tuple[float, float, float, float], list[str]] = {}
    for tech, t in profile.techs.items():
        groups.setdefault(t.rsrp_lower_dbm, []).append(tech)
    return [TechGroup(techs=tuple(techs), rsrp_lower_dbm=bounds) for bounds, techs in groups.items()]


def class_condition(class_name: str, profile: SignalProfile = DEFAULT_PROFILE) -> str:
    """A ``WHERE`` condition selecting cellular samples of one signal class by RSRP.

    Bounds are lower-inclusive, as in :func:`analytics.signal.classify`; one clause per group of
    technologies with the same thresholds, OR-ed.
    """
    idx = CLASS_NAMES.index(class_name)
    clauses = []
    rsrp = q("rsrp_dbm")
    for g in tech_groups(profile):
        parts = [g.tech_match]
        if idx > 0:
            parts.append(f"{rsrp} >= {g.rsrp_lower_dbm[idx - 1]:g}")
        if idx < len(CLASS_NAMES) - 1:
            parts.append(f"{rsrp} < {g.rsrp_lower_dbm[idx]:g}")
        clauses.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(clauses) + ")"


def covered_indicator(field: str, floor: float) -> str:
    """An expression that is 1 when ``field >= floor`` and 0 below it.

    InfluxQL has no CASE; ``floor((x - floor) / 1000) + 1`` is exact for any ``x`` within
    1000 of the floor, which holds for every RSRP the contract accepts (-156..-31 dBm).
    The mean of this indicator is the covered share of samples.
    """
    return f"floor(({q(field)} - ({floor:g})) / 1000) + 1"


def rsrp_thresholds_steps(
    profile: SignalProfile = DEFAULT_PROFILE, tech: str = "LTE"
) -> list[tuple[float | None, str]]:
    """Grafana threshold steps colouring an RSRP value by class (LTE/NR bounds by default)."""
    bounds = profile.thresholds(tech).rsrp_lower_dbm
    steps: list[tuple[float | None, str]] = [(None, CLASS_COLORS[CLASS_NAMES[0]])]
    for bound, name in zip(bounds, CLASS_NAMES[1:], strict=True):
        steps.append((bound, CLASS_COLORS[name]))
    return steps


def cond(field: str, op: str, value: str | float | bool) -> str:
    """``"field" op value``; strings are single-quoted (InfluxQL string literals)."""
    if op not in ("=", "<>", "<", "<=", ">", ">="):
        raise ValueError(f"unsupported operator {op!r}")
    if isinstance(value, bool):
        return f"{q(field)} {op} {'true' if value else 'false'}"
    if isinstance(value, str):
        if "'" in value or "\\" in value:
            raise ValueError(f"literal {value!r} needs escaping; parkwatch values never do")
        return f"{q(field)} {op} '{value}'"
    return f"{q(field)} {op} {value:g}"
