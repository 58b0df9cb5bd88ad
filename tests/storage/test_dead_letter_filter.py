"""The dead-letter filter only lets reason codes and field names through (they reach SQL and regexes)."""

from __future__ import annotations

import pytest

from storage.dead_letters import DeadLetterFilter, DeadLetterRow


@pytest.mark.parametrize(
    ("code", "field", "prefix"),
    [
        (None, None, None),
        ("out_of_range", None, "out_of_range:"),
        ("out_of_range", "sinr_db", "out_of_range: sinr_db"),
    ],
)
def test_prefix(code: str | None, field: str | None, prefix: str | None) -> None:
    assert DeadLetterFilter(code=code, field=field).prefix == prefix


@pytest.mark.parametrize(
    ("code", "field"),
    [("out_of_range/", None), ("x\n", None), ("Out", None), ("a" * 41, None), (None, "sinr_db"), ("a", ".*")],
)
def test_anything_else_is_refused(code: str | None, field: str | None) -> None:
    with pytest.raises(ValueError):
        DeadLetterFilter(code=code, field=field)


def test_the_code_of_a_stored_reason() -> None:
    row = DeadLetterRow(
        ts_ms=1, park="p", gw="g", topic="t", reason="out_of_range: sinr_db=41.0 > 40", raw=""
    )
    assert row.code == "out_of_range"
    old = DeadLetterRow(ts_ms=1, park="p", gw="g", topic="t", reason="readings[3]: Expected `float`", raw="")
    assert old.code == ""
