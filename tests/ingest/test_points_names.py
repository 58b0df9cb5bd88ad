"""The ingester's line encoder refuses a tag key that could split a line, even for a reading that
never went through the contract's decoder: the reading becomes a dead letter, the rest is written."""

from __future__ import annotations

from contract.readings import Generic
from ingest.model import Part, WriteBatch
from ingest.points import encode_batch


def test_a_reading_that_skipped_the_contract_becomes_a_dead_letter() -> None:
    # msgspec does not validate on construction: this reading never went through the decoder.
    bad = Generic(ts=1, dev="d", f={"v": 1.0}, tags={"site\n": "smuggled_meas"})
    good = Generic(ts=2, dev="d", f={"v": 1.0})
    part = Part(park="hp", gw="gw-1", readings=[bad, good], h3=[0, 0])
    out = encode_batch(WriteBatch(parts=[part]), src="test", now_ns=10)
    assert out.readings == 1
    assert len(out.rejected) == 1
    assert "tag key" in out.rejected[0].reason
    assert not any(line.startswith("=") or "smuggled_meas" in line.split(" ")[0] for line in out.lines)
    assert all("\n" not in line for line in out.lines)
