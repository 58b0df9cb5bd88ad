"""The MQTT topic scheme of contract version 1.

``{root}/v1/{park}/{gateway}/up/telemetry``  batches of readings (QoS 1)
``{root}/v1/{park}/{gateway}/up/status``     retained gateway status; the Last Will sets ``offline``
``{root}/v1/{park}/{gateway}/down/config``   a new agent configuration (retained, QoS 1)
``{root}/v1/{park}/{gateway}/down/command``  one-off commands (QoS 1)
``{root}/v1/{park}/{gateway}/down/confirm``  batches an ingester stored (QoS 1): gap repair

``root`` defaults to ``parkwatch``; it may have up to three id-like segments so that tests and
tenants can live side by side on one broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from contract.errors import TopicError
from contract.ids import check_id, is_valid_id

DEFAULT_ROOT: Final = "parkwatch"
VERSION_SEGMENT: Final = "v1"

Channel = Literal["telemetry", "status", "config", "command", "confirm"]
UP_CHANNELS: Final[frozenset[str]] = frozenset({"telemetry", "status"})
DOWN_CHANNELS: Final[frozenset[str]] = frozenset({"config", "command", "confirm"})


def check_root(root: str) -> str:
    """Validate a topic root such as ``parkwatch`` or ``tenant-a/parkwatch``."""
    parts = root.split("/")
    if not 1 <= len(parts) <= 3 or not all(is_valid_id(p) for p in parts):
        raise TopicError(
            f"invalid topic root {root[:80]!r}: 1-3 segments separated by '/', each made of "
            "A-Z a-z 0-9 _ . - (no wildcards)"
        )
    return root


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed parkwatch topic."""

    root: str
    park: str
    gateway: str
    channel: Channel

    @property
    def direction(self) -> Literal["up", "down"]:
        return "up" if self.channel in UP_CHANNELS else "down"

    def __str__(self) -> str:
        return topic_for(self.park, self.gateway, self.channel, root=self.root)


def topic_for(park: str, gateway: str, channel: Channel, *, root: str = DEFAULT_ROOT) -> str:
    """Build the topic of one gateway's channel, validating every id."""
    direction = "up" if channel in UP_CHANNELS else "down"
    if channel not in UP_CHANNELS | DOWN_CHANNELS:
        raise TopicError(f"unknown channel {channel!r}")
    return (
        f"{check_root(root)}/{VERSION_SEGMENT}/{check_id(park, 'park')}/"
        f"{check_id(gateway, 'gateway')}/{direction}/{channel}"
    )


def parse_topic(topic: str, *, root: str = DEFAULT_ROOT) -> Topic:
    """Parse a concrete topic under ``root``; raise :class:`TopicError` for anything else."""
    prefix = f"{root}/{VERSION_SEGMENT}/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic[:120]!r} is not under {prefix!r}")
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 4:
        raise TopicError(f"topic {topic[:120]!r} does not match {prefix}<park>/<gateway>/<up|down>/<channel>")
    park, gateway, direction, channel = parts
    check_id(park, "park")
    check_id(gateway, "gateway")
    allowed = UP_CHANNELS if direction == "up" else DOWN_CHANNELS if direction == "down" else frozenset()
    if channel not in allowed:
        raise TopicError(f"topic {topic[:120]!r}: unknown direction/channel {direction}/{channel}")
    return Topic(root=root, park=park, gateway=gateway, channel=channel)  # type: ignore[arg-type]


def subscription(
    channel: Channel, *, root: str = DEFAULT_ROOT, park: str = "+", share_group: str | None = None
) -> str:
    """The topic filter for one channel of every gateway (of one park, or all with ``+``).

    With ``share_group`` the filter is an MQTT v5 shared subscription
    (``$share/<group>/...``) so that several ingesters split the messages.
    """
    if park != "+":
        check_id(park, "park")
    direction = "up" if channel in UP_CHANNELS else "down"
    flt = f"{check_root(root)}/{VERSION_SEGMENT}/{park}/+/{direction}/{channel}"
    if share_group is not None:
        check_id(share_group, "share group")
        flt = f"$share/{share_group}/{flt}"
    return flt
