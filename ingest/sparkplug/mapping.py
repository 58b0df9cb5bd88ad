"""Sparkplug metrics → contract readings (pure).

A rule (``[[sparkplug.nodes.metrics]]``) puts a metric into a field of a contract kind, with a
value translation (``values``, e.g. a PLC's state code → ``running``) or a linear conversion
(``value * scale + offset``). Metrics without a rule are not lost: they become
``generic`` readings, their names folded into field names (``Motor/Temp C`` → ``motor_temp_c``).
Samples of one device at one instant that go to the same kind make one reading. The readings
leave here as plain data and are validated by the contract decoder like any published batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contract.limits import MAX_GENERIC_FIELDS
from ingest.sparkplug.payload import Value
from settings.ingest import MetricMap, SparkplugNode

_NOT_FIELD: Final = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric value of a device (``device`` "" for the edge node itself)."""

    device: str
    name: str
    value: Value
    ts_ms: int
    unit: str = ""


def field_name(metric: str) -> str:
    """A generic field name for a metric name: lower case, runs of other characters → ``_``."""
    text = _NOT_FIELD.sub("_", metric.lower()).strip("_")
    if not text:
        text = "value"
    if not text[0].isalpha():
        text = f"m_{text}"
    return text[:64].rstrip("_")


class NodeMapping:
    """The rules of one mapped edge node.

    Args:
        node: the node's mapping entry.
        edge_node: the concrete edge node id (the entry may be a ``+`` wildcard).
    """

    def __init__(self, node: SparkplugNode, edge_node: str) -> None:
        self.park = node.park
        self.gateway = node.gateway or edge_node
        self.edge_node = edge_node
        self._rules: dict[tuple[str, str], MetricMap] = {(r.device, r.name): r for r in node.metrics}

    def rule(self, device: str, name: str) -> MetricMap | None:
        """The rule for a metric: one naming its device first, else one for every device."""
        return self._rules.get((device, name)) or self._rules.get(("", name))

    def dev(self, device: str) -> str:
        """The contract device id of a Sparkplug device ("" → the edge node itself)."""
        return device or self.edge_node

    def readings(self, samples: Iterable[Sample]) -> list[dict[str, Any]]:
        """Contract readings (plain data, not yet validated) of the samples, in first-seen order."""
        grouped: dict[tuple[str, int, str], dict[str, Any]] = {}
        generic: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for s in samples:
            dev = self.dev(s.device)
            rule = self.rule(s.device, s.name)
            if rule is not None and rule.unit and s.unit and s.unit.casefold() != rule.unit.casefold():
                rule = None  # the birth says another unit: keep the value, under its own name
            if rule is None:
                chunks = generic.setdefault((dev, s.ts_ms), [])
                if not chunks or len(chunks[-1]["f"]) >= MAX_GENERIC_FIELDS:
                    chunks.append({"kind": "generic", "ts": s.ts_ms, "dev": dev, "f": {}})
                chunks[-1]["f"][field_name(s.name)] = s.value
                continue
            value = s.value
            if rule.values:
                key = str(value).lower() if isinstance(value, bool) else str(value)
                value = rule.values.get(key, value)
            scaled = rule.scale != 1.0 or rule.offset != 0.0
            if scaled and isinstance(value, int | float) and not isinstance(value, bool):
                value = value * rule.scale + rule.offset
            reading = grouped.setdefault(
                (dev, s.ts_ms, rule.kind), {"kind": rule.kind, "ts": s.ts_ms, "dev": dev}
            )
            reading[rule.field] = value
        out = list(grouped.values())
        for chunks in generic.values():
            out.extend(chunks)
        return out


class Mapper:
    """Finds the mapping of an edge node: an entry naming it, else its group's ``+`` entry."""

    def __init__(self, nodes: Sequence[SparkplugNode]) -> None:
        self._exact = {(n.group, n.edge_node): n for n in nodes if n.edge_node != "+"}
        self._wild = {n.group: n for n in nodes if n.edge_node == "+"}
        self._cache: dict[tuple[str, str], NodeMapping | None] = {}

    def find(self, group: str, edge_node: str) -> NodeMapping | None:
        """The mapping of ``group``/``edge_node`` (None: unmapped)."""
        key = (group, edge_node)
        if key not in self._cache:
            if len(self._cache) >= 100_000:  # ids come from topics: bound what they can grow
                self._cache.clear()
            node = self._exact.get(key) or self._wild.get(group)
            self._cache[key] = None if node is None else NodeMapping(node, edge_node)
        return self._cache[key]
