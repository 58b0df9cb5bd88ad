from __future__ import annotations

import pytest

from contract import TopicError, parse_topic, subscription, topic_for
from contract.topics import check_root


@pytest.mark.parametrize(
    ("park", "gw", "channel", "expected"),
    [
        ("deep-c", "gw-01", "telemetry", "parkwatch/v1/deep-c/gw-01/up/telemetry"),
        ("vsip", "GW_2.a", "status", "parkwatch/v1/vsip/GW_2.a/up/status"),
        ("vsip", "gw-2", "config", "parkwatch/v1/vsip/gw-2/down/config"),
        ("vsip", "gw-2", "command", "parkwatch/v1/vsip/gw-2/down/command"),
    ],
)
def test_topic_for_and_parse_round_trip(park: str, gw: str, channel: str, expected: str) -> None:
    topic = topic_for(park, gw, channel)  # type: ignore[arg-type]
    assert topic == expected
    parsed = parse_topic(topic)
    assert (parsed.park, parsed.gateway, parsed.channel) == (park, gw, channel)
    assert str(parsed) == topic


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "a/b",
        "+",
        "#",
        "gw+1",
        "gw#",
        "$SYS",
        "-lead",
        ".lead",
        "x" * 65,
        "sp ace",
        "tab\t",
        "ñ",
        "a\x00b",
    ],
)
def test_hostile_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(TopicError, match="invalid"):
        topic_for("park-1", bad_id, "telemetry")
    with pytest.raises(TopicError):
        topic_for(bad_id, "gw-1", "telemetry")


@pytest.mark.parametrize(
    "topic",
    [
        "parkwatch/v1/park/gw/up/config",  # config is a down channel
        "parkwatch/v1/park/gw/down/telemetry",
        "parkwatch/v1/park/gw/sideways/telemetry",
        "parkwatch/v1/park/gw/up",
        "parkwatch/v1/park/gw/up/telemetry/extra",
        "parkwatch/v2/park/gw/up/telemetry",
        "other/v1/park/gw/up/telemetry",
        "parkwatch/v1/park/+/up/telemetry",
        "parkwatch/v1/pa#rk/gw/up/telemetry",
    ],
)
def test_parse_rejects_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_custom_root_and_shared_subscription() -> None:
    root = "tenant-a/parkwatch"
    topic = topic_for("p1", "g1", "telemetry", root=root)
    assert parse_topic(topic, root=root).gateway == "g1"
    assert subscription("telemetry", root=root) == "tenant-a/parkwatch/v1/+/+/up/telemetry"
    assert subscription("status", park="p1") == "parkwatch/v1/p1/+/up/status"
    assert subscription("telemetry", share_group="ingest") == "$share/ingest/parkwatch/v1/+/+/up/telemetry"


@pytest.mark.parametrize("root", ["", "a/b/c/d", "a/+", "#", "a//b", "/a"])
def test_bad_roots_are_refused(root: str) -> None:
    with pytest.raises(TopicError):
        check_root(root)
