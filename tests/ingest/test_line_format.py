"""The compiled inner loop of the line encoder (``ingest/_lineformat.c``) writes exactly what the
``%`` template of the Python loop writes, and the encoder gives the same lines with either.

The install builds the C module with the machine's compiler; where it could not, the encoder
uses the Python loop. Under ``CI=true`` a missing module is a failure: the figures in
docs/ingest.md are those of the compiled loop.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ingest.points as points
from storage.lineprotocol import quote_string
from tests.ingest import test_line_encoder as encoder_tests

lineformat: Any
try:
    from ingest import _lineformat as lineformat
except ImportError:  # built by the install only where it found a C compiler
    lineformat = None
needs_module = pytest.mark.skipif(
    lineformat is None and os.environ.get("CI") != "true",  # under CI they fail instead
    reason="ingest._lineformat was not built (no C compiler)",
)


def test_the_install_built_the_compiled_loop() -> None:
    if os.environ.get("CI") != "true" and lineformat is None:
        pytest.skip("ingest._lineformat was not built (no C compiler); CI requires it")
    assert lineformat is not None
    assert lineformat.format_rows(("m,a=", " x=", " ", "000000"), b"tti", [["p"], [b"[1.5]"][0], [7]]) == [
        "m,a=p x=1.5 7000000"
    ]


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_INT = st.integers(min_value=-(2**70), max_value=2**70)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)


@needs_module
@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from("tibq"), max_size=7).flatmap(
        lambda kinds: st.tuples(
            st.just(kinds),
            st.lists(
                _TEXT.map(lambda t: t.replace("%", "%%")), min_size=len(kinds) + 1, max_size=len(kinds) + 1
            ),
            st.integers(min_value=1, max_value=6),
        )
    ),
    st.data(),
)
def test_rows_are_written_as_the_template_writes_them(
    spec: tuple[list[str], list[str], int], data: Any
) -> None:
    kinds, pieces, m = spec
    columns: list[Any] = []
    template_columns: list[list[Any]] = []
    for kind in kinds:
        if kind == "t":
            column = data.draw(st.lists(_TEXT, min_size=m, max_size=m))
            columns.append(column)
            template_columns.append(column)
        elif kind == "i":
            column = data.draw(st.lists(_INT, min_size=m, max_size=m))
            columns.append(column)
            template_columns.append(column)
        elif kind == "q":  # string fields: quoted by the C loop, by quote_string in Python
            column = data.draw(st.lists(_TEXT, min_size=m, max_size=m))
            columns.append(column)
            template_columns.append([quote_string(v) for v in column])
        else:  # a float column as msgspec writes it, which the encoder hands over as bytes
            values = data.draw(st.lists(_FLOAT, min_size=m, max_size=m))
            blob = msgspec.json.encode(values)
            columns.append(blob)
            template_columns.append(blob[1:-1].decode().split(","))
    ts = data.draw(st.lists(st.integers(min_value=0, max_value=2**62), min_size=m, max_size=m))
    fmt = "%s".join(pieces) + " %s"
    want = [fmt % row for row in zip(*template_columns, ts, strict=True)]
    got = lineformat.format_rows(
        (*(p.replace("%%", "%") for p in pieces[:-1]), pieces[-1].replace("%%", "%") + " ", ""),
        "".join("t" if k == "b" else k for k in kinds).encode() + b"i",
        [*columns, ts],
    )
    assert got == want


@needs_module
def test_values_of_other_types_are_written_as_percent_s_writes_them() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd ✓"

    got = lineformat.format_rows(("", ",", ",", ""), b"tti", [[None], [Odd()], [True]])
    assert got == [f"{None},{Odd()},{True}"]


@needs_module
@pytest.mark.parametrize(
    ("pieces", "kinds", "columns", "message"),
    [
        (("a", "b"), b"tt", [["x"], ["y"]], "one more piece than kinds"),
        (("a", "b"), b"f", [["x"]], "unknown kind"),
        (("a", "b", "c"), b"tt", [["x"], ["y", "z"]], "different lengths"),
        (("a", "b", "c"), b"tt", [b"[1.0]", ["y", "z"]], "fewer values than rows"),
        (("a", "b", "c"), b"tt", [b"[1.0,2.0,3.0]", ["y", "z"]], "more values than rows"),
        (("a", "b", "c"), b"tt", [b"1.0,2.0", ["y", "z"]], "must be a JSON array"),
        (("a", "b"), b"t", [b"[1.0]"], "need a column that is a sequence"),
        (("a", "b"), b"t", [["x"], ["y"]], "one column per kind"),
    ],
)
def test_inconsistent_arguments_are_refused_with_the_reason(
    pieces: tuple[str, ...], kinds: bytes, columns: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lineformat.format_rows(pieces, kinds, columns)


@needs_module
def test_a_string_field_that_is_no_str_is_refused() -> None:
    with pytest.raises(TypeError, match="not a str"):
        lineformat.format_rows(("a", "b"), b"q", [[None]])


@needs_module
def test_non_ascii_texts_come_out_as_the_same_str() -> None:
    got = lineformat.format_rows(
        ("m,park=", " v=", " ", ""), b"tti", [["Hải Phòng", "hp"], [b"[1.0,2.5]"][0], [1, 2]]
    )
    assert got == ["m,park=Hải Phòng v=1.0 1", "m,park=hp v=2.5 2"]


@needs_module
def test_the_encoder_writes_the_same_lines_with_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder's own property tests, run again with the Python loop in place of the C one."""
    monkeypatch.setattr(points, "_lineformat", None)
    encoder_tests.test_batch_encoder_writes_what_the_generic_writer_writes_reading_by_reading()
    encoder_tests.test_large_groups_of_every_rare_shape_match_the_generic_writer()
    encoder_tests.test_generic_values_of_every_type_in_one_batch()
