"""Pure conversion of OPC UA values into contract readings (no I/O, no asyncua import).

The collector hands over :class:`Sample` records (one node's new value with its status and
timestamps); :class:`ReadingAssembler` keeps the last good value of every field of every device
and turns the samples into readings:

- a reading is a full snapshot of the device (every field it knows), like a Modbus poll, so
  downstream analytics (OEE state durations, energy deltas) see the same shape whatever the
  protocol;
- samples of one device that carry the same timestamp (one PLC scan) make one reading; samples
  with different timestamps make one reading each, in time order, so the server's source
  timestamps are kept as reading times;
- a sample with a bad or uncertain status removes the field (the value is unknown now);
- a value that does not fit the contract (out of range, wrong type) is dropped with the reason
  and the rest of the reading is kept.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from contract.readings import KINDS, Generic, Reading, measurement_fields
from settings.edge_opcua import OpcuaNode

Value = float | int | str | bool
TimestampSource = Literal["source", "server", "gateway"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_OPCUA_MIN: Final = dt.datetime(1601, 1, 2, tzinfo=dt.UTC)
"""OPC UA's DateTime 0 is 1601-01-01: anything that early means "no timestamp"."""
_BAD_PATH: Final = re.compile(r"at `\$\.(?:f\.)?([A-Za-z0-9_]+)`")


def _integer_fields() -> frozenset[str]:
    out: set[str] = set()
    for kind in KINDS.values():
        for f in msgspec.structs.fields(kind):
            info = msgspec.inspect.type_info(f.type)
            types = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
            if any(isinstance(t, msgspec.inspect.IntType) for t in types) and f.name not in ("ts",):
                out.add(f.name)
    return frozenset(out)


INTEGER_FIELDS: Final = _integer_fields()
"""Contract fields that are integers (counters, ids): a float from the server is rounded."""


def to_epoch_ms(stamp: dt.datetime | None) -> int | None:
    """Epoch milliseconds of an OPC UA DateTime (naive means UTC); None when it is unset."""
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    if stamp < _OPCUA_MIN:
        return None
    return int((stamp - _EPOCH) // dt.timedelta(milliseconds=1))


@dataclass(frozen=True, slots=True)
class Sample:
    """One node's value as the server reported it.

    Attributes:
        node: index of the node in the collector's node map.
        value: the Variant's Python value.
        good: whether the StatusCode is Good (bad and uncertain values are unknown values).
        source_ms, server_ms: the SourceTimestamp and ServerTimestamp, epoch ms (None: unset).
        status: the StatusCode's name, for messages.
    """

    node: int
    value: Any
    good: bool = True
    source_ms: int | None = None
    server_ms: int | None = None
    status: str = "Good"


def convert_value(node: OpcuaNode, value: Any) -> Value:
    """The field value of one node's raw value: enum names, scale, integer counters.

    Raises:
        ValueError: the value cannot be that field (an array, a structure, an enum code out of
            range, text where a number is expected).
    """
    if node.enum is not None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer code for enum {node.enum}, got {value!r}")
        if not 0 <= value < len(node.enum):
            raise ValueError(f"code {value} has no name in enum {node.enum}")
        return node.enum[value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        scaled: float | int = value * node.scale if node.scale != 1.0 else value
        if node.field in INTEGER_FIELDS and node.kind != "generic":
            return round(scaled)
        if isinstance(scaled, float):
            return round(scaled, 9) if node.scale != 1.0 else scaled
        return scaled if node.kind == "generic" else float(scaled)
    if isinstance(value, str):
        if node.scale != 1.0:
            raise ValueError(f"text {value!r} cannot be scaled by {node.scale}")
        return value
    raise ValueError(f"a {type(value).__name__} value cannot be a reading field")


@dataclass(slots=True)
class _Device:
    device: str
    kind: str
    values: dict[str, Value] = field(default_factory=dict)
    last_report_s: float = 0.0
    last_ts_ms: int = -1


@dataclass(slots=True)
class Problem:
    """A value left out of a reading, and why (the collector logs it once per node and reason)."""

    node: int
    reason: str


class ReadingAssembler:
    """Turns samples into snapshot readings; see the module docstring.

    Args:
        nodes: the node map (samples refer to it by index).
        timestamps: which time a reading takes (``source``, ``server`` or ``gateway``).
        report_period_s: heartbeat of a device whose values do not change.
    """

    def __init__(
        self, nodes: Sequence[OpcuaNode], *, timestamps: TimestampSource, report_period_s: float
    ) -> None:
        self.nodes = list(nodes)
        self.timestamps = timestamps
        self.report_period_s = report_period_s
        self._devices: dict[tuple[str, str], _Device] = {}
        self._of_node: list[_Device] = []
        for n in self.nodes:
            key = (n.device, n.kind)
            if key not in self._devices:
                self._devices[key] = _Device(n.device, n.kind)
            self._of_node.append(self._devices[key])
        self._fields = {k: frozenset(measurement_fields(t)) for k, t in KINDS.items()}
        self.problems: list[Problem] = []
        """Values left out since the caller last cleared this list."""

    def _time_of(self, s: Sample, now_ms: int) -> int:
        if self.timestamps == "gateway":
            return now_ms
        if self.timestamps == "source" and s.source_ms is not None:
            return s.source_ms
        return s.server_ms if s.server_ms is not None else now_ms

    def add(
        self,
        samples: Iterable[Sample],
        *,
        initial: bool = False,
        now_ms: int | None = None,
        now_s: float | None = None,
    ) -> list[Reading]:
        """Apply samples in arrival order; return the readings they make, oldest first.

        ``initial`` marks the first values after a (re)connect: a server sends every value with
        the time it last changed (hours ago for a state that holds), so each device's initial
        values make one snapshot at the newest of their timestamps rather than old partial ones.
        """
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        now_s = time.monotonic() if now_s is None else now_s
        samples = list(samples)
        newest: dict[int, int] = {}
        if initial:
            for s in samples:
                key, ts = id(self._of_node[s.node]), self._time_of(s, now_ms)
                newest[key] = max(ts, newest.get(key, ts))
        groups: dict[tuple[int, int], list[Sample]] = {}
        for s in samples:
            key = id(self._of_node[s.node])
            groups.setdefault((key, newest.get(key) or self._time_of(s, now_ms)), []).append(s)
        out: list[tuple[int, Reading]] = []
        for (_, ts_ms), group in sorted(groups.items(), key=lambda kv: kv[0][1]):
            dev = self._of_node[group[0].node]
            for s in group:
                node = self.nodes[s.node]
                if not s.good:
                    dev.values.pop(node.field, None)
                    self.problems.append(Problem(s.node, f"status {s.status}"))
                    continue
                try:
                    dev.values[node.field] = convert_value(node, s.value)
                except ValueError as exc:
                    dev.values.pop(node.field, None)
                    self.problems.append(Problem(s.node, str(exc)))
            reading = self._reading(dev, ts_ms)
            if reading is not None:
                dev.last_report_s = now_s
                dev.last_ts_ms = ts_ms
                out.append((ts_ms, reading))
        out.sort(key=lambda p: p[0])
        return [r for _, r in out]

    def heartbeat(self, *, now_ms: int | None = None, now_s: float | None = None) -> list[Reading]:
        """Readings of the devices not reported for ``report_period_s``, stamped ``now_ms``."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        now_s = time.monotonic() if now_s is None else now_s
        out: list[Reading] = []
        for dev in self._devices.values():
            if dev.values and now_s - dev.last_report_s >= self.report_period_s and now_ms > dev.last_ts_ms:
                reading = self._reading(dev, now_ms)
                if reading is not None:
                    dev.last_report_s = now_s
                    dev.last_ts_ms = now_ms
                    out.append(reading)
        return out

    def _reading(self, dev: _Device, ts_ms: int) -> Reading | None:
        """The device's snapshot at ``ts_ms``; a field the contract refuses is dropped and noted."""
        while dev.values:
            try:
                if dev.kind == "generic":
                    return msgspec.convert({"ts": ts_ms, "dev": dev.device, "f": dev.values}, Generic)
                return msgspec.convert({"ts": ts_ms, "dev": dev.device, **dev.values}, KINDS[dev.kind])
            except msgspec.ValidationError as exc:
                m = _BAD_PATH.search(str(exc))
                bad = m.group(1) if m and m.group(1) in dev.values else None
                if bad is None:
                    # Not one field's fault (e.g. the timestamp): nothing to report at this time.
                    self.problems.append(Problem(self._node_of(dev, None), f"reading refused: {exc}"))
                    return None
                del dev.values[bad]
                self.problems.append(Problem(self._node_of(dev, bad), f"out of the contract's range: {exc}"))
        return None

    def _node_of(self, dev: _Device, field_name: str | None) -> int:
        for i, n in enumerate(self.nodes):
            if self._of_node[i] is dev and (field_name is None or n.field == field_name):
                return i
        return 0
