"""The committed Sparkplug B module is what protoc makes of the committed schema, and the schema
has the specification's wire numbers."""

from __future__ import annotations

from ingest.sparkplug import generate
from ingest.sparkplug.sparkplug_b_pb2 import DataType, Payload


def test_the_committed_module_matches_the_proto() -> None:
    fresh = generate.generated()
    assert set(fresh) == {"sparkplug_b_pb2.py", "sparkplug_b_pb2.pyi"}
    for name, text in fresh.items():
        committed = (generate.HERE / name).read_text()
        assert committed == text, f"{name} is stale: run python -m ingest.sparkplug.generate"


def test_check_mode_reports_current() -> None:
    assert generate.main(["--check"]) == 0


def _numbers(descriptor: object) -> dict[str, int]:
    return {f.name: f.number for f in descriptor.fields}  # type: ignore[attr-defined]


def test_wire_numbers_are_the_specifications() -> None:
    assert _numbers(Payload.DESCRIPTOR) == {"timestamp": 1, "metrics": 2, "seq": 3, "uuid": 4, "body": 5}
    assert _numbers(Payload.Metric.DESCRIPTOR) == {
        "name": 1, "alias": 2, "timestamp": 3, "datatype": 4, "is_historical": 5, "is_transient": 6,
        "is_null": 7, "metadata": 8, "properties": 9, "int_value": 10, "long_value": 11,
        "float_value": 12, "double_value": 13, "boolean_value": 14, "string_value": 15,
        "bytes_value": 16, "dataset_value": 17, "template_value": 18, "extension_value": 19,
    }  # fmt: skip
    assert _numbers(Payload.PropertySet.DESCRIPTOR) == {"keys": 1, "values": 2}
    assert _numbers(Payload.DataSet.DESCRIPTOR) == {"num_of_columns": 1, "columns": 2, "types": 3, "rows": 4}
    assert _numbers(Payload.Template.DESCRIPTOR) == {
        "version": 1, "metrics": 2, "parameters": 3, "template_ref": 4, "is_definition": 5,
    }  # fmt: skip
    expected = {
        "Unknown": 0, "Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6, "UInt32": 7,
        "UInt64": 8, "Float": 9, "Double": 10, "Boolean": 11, "String": 12, "DateTime": 13, "Text": 14,
        "UUID": 15, "DataSet": 16, "Bytes": 17, "File": 18, "Template": 19, "PropertySet": 20,
        "PropertySetList": 21, "Int8Array": 22, "Int16Array": 23, "Int32Array": 24, "Int64Array": 25,
        "UInt8Array": 26, "UInt16Array": 27, "UInt32Array": 28, "UInt64Array": 29, "FloatArray": 30,
        "DoubleArray": 31, "BooleanArray": 32, "StringArray": 33, "DateTimeArray": 34,
    }  # fmt: skip
    assert {v.name: v.number for v in DataType.DESCRIPTOR.values} == expected
