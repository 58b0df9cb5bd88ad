"""Hypothesis strategies for ids, keys and names: valid ones, and valid ones with a control
character inserted at the start, inside or at the end (the end weighted double: the ``$`` trap)."""

from __future__ import annotations

from hypothesis import strategies as st

from contract.ids import Syntax

CONTROL = ["\n", "\r", "\r\n", "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"]
"""Line breaks of every kind (also the ones ``str.splitlines`` knows), tab, NUL, other controls."""


def valid(syntax: Syntax) -> st.SearchStrategy[str]:
    return st.from_regex(syntax.regex, fullmatch=True).filter(lambda s: len(s) <= syntax.max_length)


@st.composite
def corrupted(draw: st.DrawFn, syntax: Syntax) -> str:
    """A valid value with a control character inserted at its start, inside or at its end."""
    value = draw(valid(syntax))
    bad = draw(st.sampled_from(CONTROL))
    where = draw(st.sampled_from(["start", "inside", "end", "end"]))
    i = {"start": 0, "end": len(value)}.get(where, draw(st.integers(0, len(value))))
    return value[:i] + bad + value[i:]
