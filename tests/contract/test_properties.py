"""Property-based tests: round trips, and garbage never raises anything but the contract's error."""

from __future__ import annotations

import contextlib
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import Batch, ContractError, decode_batch, encode
from tests.contract.strategies import NOW, batches

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(batches, st.sampled_from(["json", "msgpack"]))
def test_encode_decode_round_trip(batch: Batch, encoding: str) -> None:
    out = decode_batch(encode(batch, encoding), now_ms=NOW)  # type: ignore[arg-type]
    assert out.rejected == []
    assert (out.gw, out.seq) == (batch.gw, batch.seq)
    assert out.readings == batch.readings


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_contract_errors(payload: bytes) -> None:
    with contextlib.suppress(ContractError):
        decode_batch(payload, now_ms=NOW)


@SETTINGS
@given(json_values)
def test_random_json_raises_only_contract_errors(value: object) -> None:
    payloads = [json.dumps(value).encode()]
    with contextlib.suppress(OverflowError):  # MessagePack has no integers beyond 64 bits
        payloads.append(msgspec.msgpack.encode(value))
    for payload in payloads:
        with contextlib.suppress(ContractError):
            decode_batch(payload, now_ms=NOW)


@SETTINGS
@given(batches, st.data())
def test_mutated_readings_are_kept_or_rejected_never_crash(batch: Batch, data: st.DataObject) -> None:
    doc = msgspec.to_builtins(batch)
    i = data.draw(st.integers(0, len(doc["readings"]) - 1))
    key = data.draw(st.sampled_from(sorted(doc["readings"][i])))
    doc["readings"][i][key] = data.draw(json_values)
    out = decode_batch(msgspec.json.encode(doc), now_ms=NOW)
    refused = [r for r in out.rejected if not r.dropped]
    assert len(out.readings) + len(refused) == len(batch.readings)
    untouched = [r for j, r in enumerate(batch.readings) if j != i]
    assert all(r in out.readings for r in untouched)
