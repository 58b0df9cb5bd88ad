"""Sparkplug B topics (specification 3.0, section 4.1): parse, build, subscribe."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from ingest.sparkplug.errors import SparkplugError

NAMESPACE: Final = "spBv1.0"
MessageType = Literal["NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"]
MESSAGE_TYPES: Final[frozenset[str]] = frozenset(get_args(MessageType))
NODE_TYPES: Final = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
_ID: Final = re.compile(r"[^/+#\s]{1,128}")
"""A group, edge node or device id: one topic segment, no wildcards (UTF-8 allowed, spec 4.1.1)."""


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    """A parsed ``spBv1.0/{group}/{type}/{edge_node}[/{device}]`` topic (``device`` "" for a node)."""

    group: str
    type: MessageType
    edge_node: str
    device: str = ""


@dataclass(frozen=True, slots=True)
class StateTopic:
    """``spBv1.0/STATE/{host_id}``: a host application's online state."""

    host_id: str


def _check(value: str, what: str, topic: str) -> str:
    if _ID.fullmatch(value) is None:
        raise SparkplugError(f"sparkplug topic {topic[:160]!r}: invalid {what} {value[:64]!r}", key="topic")
    return value


def parse_topic(topic: str) -> SparkplugTopic | StateTopic:
    """Parse a topic under ``spBv1.0/``; raise :class:`SparkplugError` for anything else."""
    parts = topic.split("/")
    if parts[0] != NAMESPACE:
        raise SparkplugError(f"topic {topic[:160]!r} is not under {NAMESPACE}/", key="topic")
    if len(parts) == 3 and parts[1] == "STATE":
        return StateTopic(host_id=_check(parts[2], "host id", topic))
    if len(parts) not in (4, 5) or parts[2] not in MESSAGE_TYPES:
        raise SparkplugError(
            f"topic {topic[:160]!r} does not match {NAMESPACE}/<group>/<message type>/<edge node>[/<device>]",
            key="topic",
        )
    mtype: MessageType = parts[2]  # type: ignore[assignment]
    is_node = mtype in NODE_TYPES
    if is_node != (len(parts) == 4):
        need = "no device segment" if is_node else "a device segment"
        raise SparkplugError(f"topic {topic[:160]!r}: {mtype} takes {need}", key="topic")
    return SparkplugTopic(
        group=_check(parts[1], "group id", topic),
        type=mtype,
        edge_node=_check(parts[3], "edge node id", topic),
        device=_check(parts[4], "device id", topic) if len(parts) == 5 else "",
    )


def subscriptions(groups: list[str]) -> list[str]:
    """The topic filters of the given groups (``+``: every group); STATE topics excluded."""
    return [f"{NAMESPACE}/{g}/#" for g in groups]


def ncmd_topic(group: str, edge_node: str) -> str:
    """Where commands to an edge node go."""
    return f"{NAMESPACE}/{group}/NCMD/{edge_node}"


def state_topic(host_id: str) -> str:
    """Where a host application publishes its online state."""
    return f"{NAMESPACE}/STATE/{host_id}"
