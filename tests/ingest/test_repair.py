"""Gap repair, ingester side: confirms only after durability, per gateway, bounded, resumable."""

from __future__ import annotations

import pytest

from contract import Confirm, decode_message
from contract.messages import MAX_CONFIRM_RANGES
from ingest.repair import ConfirmOutbox, Notes, to_ranges


class FakeLink:
    def __init__(self) -> None:
        self.up = True
        self.sent: list[tuple[str, Confirm]] = []

    def publish(self, topic: str, payload: bytes) -> bool:
        if not self.up:
            return False
        self.sent.append((topic, decode_message(payload, Confirm)))
        return True


@pytest.mark.parametrize(
    ("seqs", "ranges"),
    [([], []), ([5], [(5, 5)]), ([3, 1, 2, 2, 7, 8, 10], [(1, 3), (7, 8), (10, 10)])],
)
def test_to_ranges(seqs: list[int], ranges: list[tuple[int, int]]) -> None:
    assert to_ranges(seqs) == ranges


def test_confirms_only_what_was_stored_per_gateway() -> None:
    link = FakeLink()
    box = ConfirmOutbox(root="t/parkwatch", ingester="ing-1", interval_s=1.0, publish=link.publish)
    # Two write batches: the second one is durable first.
    first: Notes = {}
    second: Notes = {}
    for i in (0, 1, 3):
        box.received(first, "p1", "gw-a", i)
    box.received(second, "p1", "gw-a", 2)
    box.received(first, "p2", "gw-b", 40)
    assert first == {("p1", "gw-a"): [0, 1, 3], ("p2", "gw-b"): [40]}
    assert box.flush() == 0  # received, not durable yet: nothing to confirm
    box.stored(first)
    assert box.flush() == 2
    assert link.sent == [
        ("t/parkwatch/v1/p1/gw-a/down/confirm", Confirm(v=1, gw="gw-a", stored=[(0, 1), (3, 3)], by="ing-1")),
        ("t/parkwatch/v1/p2/gw-b/down/confirm", Confirm(v=1, gw="gw-b", stored=[(40, 40)], by="ing-1")),
    ]
    assert box.pending == 0
    box.stored(second)
    assert box.flush() == 1
    assert link.sent[-1][1].stored == [(2, 2)]


def test_kept_while_disconnected_and_split_at_the_range_limit() -> None:
    link = FakeLink()
    link.up = False
    box = ConfirmOutbox(root="parkwatch", ingester="ing-1", interval_s=1.0, publish=link.publish)
    # Every other number: one range each, more than one message can hold.
    notes: Notes = {}
    count = MAX_CONFIRM_RANGES + 5
    for i in range(count):
        box.received(notes, "p1", "gw-a", 2 * i)
    box.received(notes, "p1", "gw-a", 0)  # a redelivered batch: counted once
    box.stored(notes)
    assert box.flush() == 0
    assert box.pending == count
    link.up = True
    assert box.flush() == 2
    assert [len(c.stored) for _, c in link.sent] == [MAX_CONFIRM_RANGES, 5]
    assert box.pending == 0
    assert box.published == 2


def test_disabled_confirms_nothing() -> None:
    link = FakeLink()
    box = ConfirmOutbox(root="parkwatch", ingester="i", interval_s=1.0, publish=link.publish, enabled=False)
    notes: Notes = {}
    box.received(notes, "p1", "gw-a", 1)
    assert notes == {}
    box.stored(notes)
    assert box.flush() == 0
    assert link.sent == []
