"""Sparkplug B payloads: protobuf decoding, metric values by datatype, the rebirth command."""

from __future__ import annotations

import math
from typing import Final

from google.protobuf.message import DecodeError

from ingest.sparkplug.errors import SparkplugError
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload

Value = float | int | bool | str
REBIRTH_METRIC: Final = "Node Control/Rebirth"
BDSEQ_METRIC: Final = "bdSeq"

_SIGNED_BITS: Final[dict[int, int]] = {
    DataType.Int8: 8,
    DataType.Int16: 16,
    DataType.Int32: 32,
    DataType.Int64: 64,
}
_UNSIGNED: Final[frozenset[int]] = frozenset(
    {DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64, DataType.DateTime}
)
_FLOATS: Final[frozenset[int]] = frozenset({DataType.Float, DataType.Double})
_STRINGS: Final[frozenset[int]] = frozenset({DataType.String, DataType.Text, DataType.UUID})


def decode(raw: bytes) -> Payload:
    """Parse a Sparkplug B payload; raise :class:`SparkplugError` when it is not one."""
    payload = Payload()
    try:
        payload.ParseFromString(raw)
    except DecodeError as exc:
        raise SparkplugError(
            f"malformed Sparkplug B protobuf ({exc}); the publisher must encode sparkplug_b.proto Payload",
            key="malformed",
        ) from exc
    return payload


def datatype_name(datatype: int) -> str:
    """The specification's name of a datatype number (``Int32``), or the number."""
    try:
        return str(DataType.Name(datatype))
    except ValueError:
        return str(datatype)


def _signed(raw: int, bits: int, stored_bits: int) -> int:
    """Two's complement: ``raw`` was stored in an unsigned field of ``stored_bits`` bits.

    Encoders differ in how they write a negative Int8/Int16: sign-extended to the 32 bits of
    ``int_value`` (the specification's reading) or masked to the type's own width. Both are read.
    """
    if raw >= 1 << (stored_bits - 1):
        return raw - (1 << stored_bits)
    if bits < stored_bits and raw >= 1 << (bits - 1) and raw < 1 << bits:
        return raw - (1 << bits)
    return raw


def metric_value(metric: Payload.Metric, datatype: int) -> Value | None:
    """The value of ``metric`` read as ``datatype`` (None: ``is_null`` or no value sent).

    Scalar numbers, booleans and strings are taken; data sets, templates, bytes, files and
    arrays raise :class:`SparkplugError` (key ``unsupported_datatype``): parkwatch stores
    scalar time series only.
    """
    if metric.is_null:
        return None
    which = metric.WhichOneof("value")
    if which is None:
        return None
    if datatype in _SIGNED_BITS and which in ("int_value", "long_value"):
        stored = 32 if which == "int_value" else 64
        return _signed(getattr(metric, which), _SIGNED_BITS[datatype], stored)
    if datatype in _UNSIGNED and which in ("int_value", "long_value"):
        return int(getattr(metric, which))
    if datatype in _FLOATS and which in ("float_value", "double_value"):
        value = float(getattr(metric, which))
        if not math.isfinite(value):
            raise SparkplugError(f"value {value} is not finite", key="not_finite")
        return value
    if datatype == DataType.Boolean and which == "boolean_value":
        return bool(metric.boolean_value)
    if datatype in _STRINGS and which == "string_value":
        return str(metric.string_value)
    if datatype in _SIGNED_BITS or datatype in _UNSIGNED or datatype in _FLOATS or datatype in _STRINGS:
        raise SparkplugError(
            f"datatype {datatype_name(datatype)} carried in {which}, which cannot hold it",
            key="wrong_value_field",
        )
    raise SparkplugError(
        f"datatype {datatype_name(datatype)} is not stored (scalar numbers, booleans and strings only)",
        key="unsupported_datatype",
    )


def property_text(metric: Payload.Metric, key: str) -> str:
    """A string property of a metric (``engUnit``), "" when absent."""
    props = metric.properties
    for k, v in zip(props.keys, props.values, strict=False):
        if k == key and v.WhichOneof("value") == "string_value":
            return str(v.string_value)
    return ""


def rebirth_request(now_ms: int) -> bytes:
    """The NCMD payload asking an edge node to publish its births again (spec 6.4.20)."""
    payload = Payload(timestamp=now_ms)
    payload.metrics.add(name=REBIRTH_METRIC, timestamp=now_ms, datatype=DataType.Boolean, boolean_value=True)
    return bytes(payload.SerializeToString())
