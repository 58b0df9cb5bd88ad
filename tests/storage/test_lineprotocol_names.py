"""Defence in depth: a measurement, tag key or field key that could split a line is refused by the
encoder itself, whatever let it through upstream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.lineprotocol import LineProtocolError, encode_point, name_problem

BREAKERS = ["\n", "\r", "\r\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize("where", ["leading", "embedded", "trailing"])
def test_names_with_control_characters_are_refused(breaker: str, where: str) -> None:
    name = {"leading": f"{breaker}site", "embedded": f"si{breaker}te", "trailing": f"site{breaker}"}[where]
    assert name_problem(name) is not None
    with pytest.raises(LineProtocolError, match="tag key"):
        encode_point("m", [(name, "smuggled_meas")], [("f", 1.0)], 1)
    with pytest.raises(LineProtocolError, match="field key"):
        encode_point("m", [], [(name, 1.0)], 1)
    with pytest.raises(LineProtocolError, match="measurement"):
        encode_point(name, [], [("f", 1.0)], 1)


def test_a_trailing_backslash_in_a_name_is_refused() -> None:
    with pytest.raises(LineProtocolError, match="backslash"):
        encode_point("m", [("site\\", "x")], [("f", 1.0)], 1)


def test_ordinary_names_still_encode() -> None:
    assert encode_point("m x", [("a b", "v")], [("f,g", 1.0)], 7) == "m\\ x,a\\ b=v f\\,g=1.0 7"


@given(
    st.text(min_size=1, max_size=10),
    st.sampled_from(BREAKERS),
    st.text(max_size=10),
)
def test_no_name_with_a_control_character_yields_a_second_line(head: str, breaker: str, tail: str) -> None:
    name = head + breaker + tail
    with pytest.raises(LineProtocolError):
        encode_point("m", [(name, "v")], [("f", 1.0)], 1)
