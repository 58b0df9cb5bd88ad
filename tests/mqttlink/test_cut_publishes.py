"""The receive fast path cuts QoS 0/1 PUBLISH packets out of a byte stream exactly as paho decodes them.

Packets are framed here from the MQTT specification (fixed header, remaining length, topic,
packet id, v5 properties packed by paho's ``Properties``) and decoded one by one by paho's own
``decode_publish``, the truth. For any stream of mixed packets cut at any byte, the fast path must
return exactly the leading QoS 0 and 1 PUBLISHes without properties that are complete, stop at the
first other or incomplete packet (saying whether more bytes would complete a small PUBLISH), and
respect the message and byte budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt._packet import decode_publish
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttlink.link import cut_publishes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


@dataclass(frozen=True)
class Packet:
    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    retain: bool
    content_type: str | None  # v5 only: a property
    other: bytes = b""  # not a PUBLISH: these bytes as they are (PUBACK, PINGRESP)

    def header(self) -> int:
        return 0x30 | self.qos << 1 | (0x08 if self.dup else 0) | (0x01 if self.retain else 0)

    def body(self, v5: bool) -> bytes:
        body = len(self.topic.encode()).to_bytes(2, "big") + self.topic.encode()
        if self.qos:
            body += self.mid.to_bytes(2, "big")
        if v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if self.content_type is not None:
                props.ContentType = self.content_type
            body += props.pack()  # type: ignore[no-untyped-call]
        return body + self.payload

    def frame(self, v5: bool) -> bytes:
        if self.other:
            return self.other
        body = self.body(v5)
        return bytes([self.header()]) + _varint(len(body)) + body

    def fast(self, v5: bool) -> bool:
        """Whether the fast path takes it: a QoS 0 or 1 PUBLISH, without properties on v5."""
        return not self.other and self.qos < 2 and not (v5 and self.content_type is not None)


publishes = st.builds(
    Packet,
    topic=st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t),
    payload=st.one_of(st.binary(max_size=300), st.binary(min_size=16_000, max_size=20_000)),
    mid=st.integers(1, 65535),
    qos=st.sampled_from([1, 1, 1, 0, 0, 2]),
    dup=st.booleans(),
    retain=st.booleans(),
    content_type=st.one_of(st.none(), st.none(), st.none(), st.just("application/msgpack")),
)
others = st.sampled_from([b"\x40\x02\x00\x07", b"\xd0\x00"]).map(
    lambda raw: Packet("", b"", 0, 0, False, False, None, other=raw)
)


@given(
    packets=st.lists(st.one_of(publishes, publishes, publishes, others), max_size=12),
    v5=st.booleans(),
    cut_fraction=st.floats(0.0, 1.0),
    lead=st.binary(max_size=5),
    max_messages=st.integers(1, 20),
    max_payload_bytes=st.sampled_from([1, 500, 40_000, 1 << 62]),
)
def test_cuts_exactly_the_complete_leading_publishes(
    packets: list[Packet],
    v5: bool,
    cut_fraction: float,
    lead: bytes,
    max_messages: int,
    max_payload_bytes: int,
) -> None:
    frames = [p.frame(v5) for p in packets]
    stream = lead + b"".join(frames)
    cut = len(lead) + int(cut_fraction * (len(stream) - len(lead)))
    got, pos, short = cut_publishes(
        stream[:cut], len(lead), v5=v5, max_messages=max_messages, max_payload_bytes=max_payload_bytes
    )

    expected: list[tuple[str, bytes, int, bool]] = []
    expected_pos, expected_short = len(lead), False
    taken_bytes = 0
    for packet, frame in zip(packets, frames, strict=True):
        if len(expected) >= max_messages or taken_bytes >= max_payload_bytes:
            break
        if expected_pos + len(frame) > cut:  # incomplete in what was read so far
            starts_like_one = expected_pos < cut and not packet.other and packet.qos < 2
            expected_short = starts_like_one and len(packet.body(v5)) <= 65536
            break
        if not packet.fast(v5):
            break
        # The truth: paho's decoder on the packet's fixed-header byte and its body.
        decoded = decode_publish(packet.header(), packet.body(v5), 5 if v5 else 4)  # type: ignore[arg-type]
        expected.append((decoded.topic.decode(), bytes(decoded.payload), decoded.mid, decoded.dup))
        taken_bytes += len(decoded.payload)
        expected_pos += len(frame)
    assert got == expected
    assert pos == expected_pos
    assert short == expected_short


def test_a_broken_utf8_topic_is_shown_not_raised() -> None:
    frame = b"\x32\x08\x00\x03a\xffb\x00\x01" + b"x"
    (publish,), pos, short = cut_publishes(frame, 0, v5=False, max_messages=10, max_payload_bytes=100)
    assert publish == ("a\ufffdb", b"x", 1, False)
    assert (pos, short) == (len(frame), False)


def test_a_remaining_length_longer_than_four_bytes_is_left_to_paho() -> None:
    # Malformed (MQTT allows at most 4 length bytes): not cut, not waited for; paho reports it.
    frame = b"\x32\xff\xff\xff\xff\x01" + b"\x00" * 10
    assert cut_publishes(frame, 0, v5=True, max_messages=10, max_payload_bytes=100) == ([], 0, False)


def _publishes(*payloads: bytes) -> bytes:
    return b"".join(
        Packet("t/x", p, i + 1, 1, False, False, None).frame(True) for i, p in enumerate(payloads)
    )


def test_budgets_stop_after_the_message_that_reaches_them() -> None:
    stream = _publishes(b"a" * 10, b"b" * 10, b"c" * 10)
    for max_bytes, n in [(1, 1), (10, 1), (11, 2), (20, 2), (21, 3)]:
        got, _, _ = cut_publishes(stream, 0, v5=True, max_messages=99, max_payload_bytes=max_bytes)
        assert [p[1][:1] for p in got] == [b"a", b"b", b"c"][:n], max_bytes
    got, pos, short = cut_publishes(stream, 0, v5=True, max_messages=2, max_payload_bytes=1 << 62)
    assert [p[2] for p in got] == [1, 2]
    assert (pos, short) == (len(_publishes(b"a" * 10, b"b" * 10)), False)


def test_only_a_small_incomplete_publish_is_worth_completing() -> None:
    small, big = _publishes(b"s" * 1000), _publishes(b"b" * 70_000)
    assert cut_publishes(small[:500], 0, v5=True, max_messages=9, max_payload_bytes=1 << 62) == ([], 0, True)
    assert cut_publishes(small[:2], 0, v5=True, max_messages=9, max_payload_bytes=1 << 62) == ([], 0, True)
    assert cut_publishes(big[:30_000], 0, v5=True, max_messages=9, max_payload_bytes=1 << 62) == (
        [],
        0,
        False,
    )
