"""Edge node sessions: what the births said, and the message sequence (pure bookkeeping).

An edge node numbers every message but NDEATH 0, 1, ..., 255, 0, ... (NBIRTH is 0). The
session unwraps that into an ever-growing number for the loss ledger: the step from the last
number modulo 256 is 1 for the next message, 0 for a message delivered twice, and ``k > 1``
for ``k - 1`` messages lost (a gap of 256 or more looks like a smaller one: Sparkplug cannot
tell, and a rebirth is requested either way). Each NBIRTH continues the unwrapped count, so
the ledger sees one gateway sequence across the node's sessions.

Aliases live in one space per edge node, shared by the node and its devices (spec 6.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

SEQ_MODULO: Final = 256
Step = Literal["next", "duplicate", "gap", "unborn"]


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric as its birth certificate declared it."""

    name: str
    datatype: int
    unit: str = ""


@dataclass(frozen=True, slots=True)
class SeqResult:
    """Where one message falls in its node's sequence.

    Attributes:
        step: ``next``; ``duplicate`` (same number again); ``gap`` (``missing`` messages were
            skipped); ``unborn`` (no NBIRTH seen: the number means nothing yet).
        ext_seq: the unwrapped number (for the loss ledger; -1 when unborn).
        missing: messages skipped by a gap.
    """

    step: Step
    ext_seq: int
    missing: int = 0


@dataclass(slots=True)
class NodeSession:
    """One edge node: born or not, its bdSeq, last seq, aliases and devices."""

    born: bool = False
    bd_seq: int | None = None
    last_seq: int = -1
    ext_seq: int = -1
    aliases: dict[int, tuple[str, MetricDef]] = field(default_factory=dict)
    """alias → (device, definition); device "" for the node's own metrics."""
    names: dict[tuple[str, str], MetricDef] = field(default_factory=dict)
    """(device, name) → definition."""
    devices: set[str] = field(default_factory=set)
    """Devices born (DBIRTH) and not dead since."""

    def birth(self, seq: int, bd_seq: int | None) -> SeqResult:
        """An NBIRTH: forget the previous session's metrics and devices, restart the sequence."""
        self.born = True
        self.bd_seq = bd_seq
        self.aliases.clear()
        self.names.clear()
        self.devices.clear()
        self.last_seq = seq
        self.ext_seq += 1
        return SeqResult("next", self.ext_seq)

    def step(self, seq: int) -> SeqResult:
        """Any other numbered message (NDATA, DBIRTH, DDATA, DDEATH)."""
        if not self.born:
            return SeqResult("unborn", -1)
        delta = (seq - self.last_seq) % SEQ_MODULO
        self.last_seq = seq
        if delta == 0:
            return SeqResult("duplicate", self.ext_seq)
        self.ext_seq += delta
        if delta == 1:
            return SeqResult("next", self.ext_seq)
        return SeqResult("gap", self.ext_seq, missing=delta - 1)

    def define(self, device: str, alias: int | None, definition: MetricDef) -> str:
        """Record one metric of a birth; "" or why the alias clashes (it is then not recorded)."""
        self.names[(device, definition.name)] = definition
        if alias is None:
            return ""
        known = self.aliases.get(alias)
        if known is not None and known != (device, definition):
            return f"alias {alias} of {definition.name!r} is already {known[1].name!r}: aliases must be unique per edge node"
        self.aliases[alias] = (device, definition)
        return ""

    def device_birth(self, device: str) -> None:
        """A DBIRTH: the device's previous metrics are replaced by the new certificate's."""
        self.devices.add(device)
        for alias in [a for a, (d, _) in self.aliases.items() if d == device]:
            del self.aliases[alias]
        for key in [k for k in self.names if k[0] == device]:
            del self.names[key]

    def resolve(self, device: str, name: str, alias: int | None) -> MetricDef | None:
        """The definition of a data message's metric: by name if it has one, else by alias."""
        if name:
            return self.names.get((device, name))
        if alias is None:
            return None
        found = self.aliases.get(alias)
        if found is None or found[0] != device:
            return None
        return found[1]

    def death(self) -> set[str]:
        """An NDEATH that matched: the node and every device it had are offline; returns those."""
        self.born = False
        devices, self.devices = self.devices, set()
        return devices
