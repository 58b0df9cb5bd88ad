"""Browse an OPC UA server and propose a node map (``parkwatch edge init --opcua URL``).

Every variable below the Objects folder, outside namespace 0 (the server's own diagnostics),
becomes one node of the map: its parent object is the device, its browse name the field. A
device whose variable names are fields of one contract kind (``spindle_temp_c``, ``state`` ...:
machine; ``power_kw`` ...: energy; ``temp_c`` ...: environment) takes that kind; every other
variable becomes a ``generic`` value of its device, to be renamed by hand where it matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from asyncua import ua
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds

from contract.ids import FIELD_NAME, ID
from contract.readings import KINDS, measurement_fields
from settings.edge_opcua import OpcuaKind, OpcuaNode

MAPPED_KINDS: Final[tuple[OpcuaKind, ...]] = ("machine", "energy", "environment")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class FoundVariable:
    """A variable met while browsing: its NodeId, browse path and parent object."""

    node_id: str
    browse_path: str
    parent: str
    name: str


def device_id(name: str) -> str:
    """A valid device id from a browse name (``Press 01`` -> ``Press-01``)."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-._")[:64] or "device"
    return text if ID.is_valid(text) else f"d-{text}"[:64]


def field_name(name: str) -> str:
    """A valid field name from a browse name (``SpindleTemp`` -> ``spindle_temp``)."""
    text = _CAMEL.sub("_", name).lower()
    text = re.sub(r"[^a-z0-9_]+", "_", text).strip("_")[:64] or "value"
    return text if FIELD_NAME.is_valid(text) else f"v_{text}"[:64]


def propose(found: list[FoundVariable]) -> list[OpcuaNode]:
    """The node map for the variables found (pure; see the module docstring)."""
    by_parent: dict[str, list[FoundVariable]] = {}
    for v in found:
        by_parent.setdefault(v.parent, []).append(v)
    out: list[OpcuaNode] = []
    used: set[tuple[str, str, str]] = set()
    for parent, variables in by_parent.items():
        dev = device_id(parent)
        names = [field_name(v.name) for v in variables]
        score = {k: sum(n in measurement_fields(KINDS[k]) for n in names) for k in MAPPED_KINDS}
        best = max(MAPPED_KINDS, key=lambda k: score[k])
        for v, name in zip(variables, names, strict=True):
            kind: OpcuaKind = best if score[best] and name in measurement_fields(KINDS[best]) else "generic"
            key = (dev, kind, name)
            if key in used:
                continue
            used.add(key)
            out.append(OpcuaNode(node_id=v.node_id, device=dev, kind=kind, field=name))
    return out


async def browse_variables(
    objects: Node, *, max_depth: int = 6, max_nodes: int = 2000
) -> list[FoundVariable]:
    """Every variable below ``objects`` outside namespace 0, breadth first, bounded.

    Raises:
        ua.UaError, OSError, TimeoutError: the server stopped answering.
    """
    found: list[FoundVariable] = []
    queue: list[tuple[Node, str, str, int]] = [(objects, "", "", 0)]
    seen: set[ua.NodeId] = set()
    while queue and len(found) < max_nodes:
        node, path, parent, depth = queue.pop(0)
        for child in await node.get_children(refs=ObjectIds.HierarchicalReferences):
            if child.nodeid in seen or child.nodeid.NamespaceIndex == 0:
                continue
            seen.add(child.nodeid)
            qn = await child.read_browse_name()
            child_path = f"{path}/{qn.NamespaceIndex}:{qn.Name}".lstrip("/")
            cls = await child.read_node_class()
            if cls == ua.NodeClass.Variable:
                found.append(FoundVariable(child.nodeid.to_string(), child_path, parent or "server", qn.Name))
                if len(found) >= max_nodes:
                    break
            elif cls == ua.NodeClass.Object and depth + 1 < max_depth:
                queue.append((child, child_path, qn.Name, depth + 1))
    return found
