"""InfluxDB line protocol encoding: pure functions, no I/O.

``measurement,tag=value,... field=value,... timestamp``

Escaping follows the InfluxDB 1.x parser (which 2.x and 3.x accept too):

- measurement: ``,`` and space are escaped with a backslash;
- tag keys, tag values and field keys: ``,``, ``=`` and space are escaped;
- string field values: double-quoted, with ``"`` and ``\\`` escaped; newlines are kept as they are.

No name (measurement, tag key, field key) may hold a line break or any other control character,
and no tag value a line break: a line break ends the line, and whatever follows it is parsed as a
point of its own (the tag key ``"site\\n"`` with the value ``smuggled_meas`` wrote a point into the
measurement ``=smuggled_meas``). The contract already refuses such ids and keys; this module
refuses them again, with :class:`LineProtocolError`, so nothing that reaches line protocol can
split a line.

Tag values cannot hold every string: the 1.x parser never unescapes a backslash in a tag, so a
value ending with ``\\`` or with a backslash right before ``,``, ``=`` or a space cannot be written,
and a newline always ends the line. :func:`tag_value_problem` tells such values apart so the
caller can dead-letter the reading instead of writing a corrupt point.

Integers carry the ``i`` suffix and floats are always written as floats (``1.0``, never ``1``),
so a column never changes type between points (no "field type conflict").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

FieldValue = float | int | bool | str

_MEASUREMENT_TABLE: Final = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_TABLE: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_TABLE: Final = str.maketrans({'"': '\\"', "\\": "\\\\"})
_BAD_TAG_RE: Final = re.compile(r"[\n\r]|\\(?:[,= ]|\Z)")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class LineProtocolError(ValueError):
    """A value that line protocol cannot carry (non-finite float, unrepresentable tag, empty name)."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a measurement, tag key or field key, or ``None`` when it can."""
    if not name:
        return "it is empty"
    if _CONTROL_RE.search(name) is not None:
        return "it contains a line break or another control character"
    if name.endswith("\\"):
        return "it ends with a backslash, which would escape the separator after it"
    return None


def _checked_name(what: str, name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise LineProtocolError(f"{what} {name[:80]!r} cannot be written: {problem}")
    return name


def escape_measurement(name: str) -> str:
    """Escape a measurement name.

    Raises:
        LineProtocolError: the name is empty or holds a control character or a final backslash.
    """
    return _checked_name("measurement", name).translate(_MEASUREMENT_TABLE)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (check names with :func:`escape_name`)."""
    return text.translate(_KEY_TABLE)


def escape_name(what: str, name: str) -> str:
    """Check and escape a tag key or field key (``what`` names it in the error).

    Raises:
        LineProtocolError: the key is empty or holds a control character or a final backslash.
    """
    return _checked_name(what, name).translate(_KEY_TABLE)


def quote_string(text: str) -> str:
    """A string field value, quoted and escaped."""
    return '"' + text.translate(_STRING_TABLE) + '"'


def tag_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored exactly as a tag value, or ``None`` when it can."""
    if _BAD_TAG_RE.search(value) is None:
        return None
    if "\n" in value or "\r" in value:
        return "a tag value contains a line break, which InfluxDB tags cannot hold"
    return "a tag value has a backslash at its end or before ',', '=' or a space, which InfluxDB tags cannot hold"


def format_float(value: float) -> str:
    """A finite float in line protocol (always with a decimal point or exponent)."""
    if not math.isfinite(value):
        raise LineProtocolError(f"non-finite float {value!r}")
    return repr(float(value))


def format_field(value: FieldValue) -> str:
    """Format a field value by its Python type: bool, int (``i``), float or string."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return f"{value}i"
    if type(value) is float:
        return format_float(value)
    if isinstance(value, str):
        return quote_string(value)
    raise LineProtocolError(f"unsupported field value type {type(value).__name__}")


def encode_point(
    measurement: str,
    tags: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, FieldValue]],
    ts_ns: int,
) -> str:
    """One point as a line (without the trailing newline).

    Tags with an empty value are left out (line protocol has no empty tag value). At least one
    field is required.

    Raises:
        LineProtocolError: no field, a non-finite float, an unrepresentable tag value, or a
            measurement, tag key or field key that is empty, holds a line break or another
            control character, or ends with a backslash.
    """
    parts = [escape_measurement(measurement)]
    for key, value in tags:
        if not value:
            continue
        problem = tag_value_problem(value)
        if problem is not None:
            raise LineProtocolError(f"tag {key[:80]!r}: {problem}")
        parts.append(f",{escape_name('tag key', key)}={escape_key(value)}")
    field_text = ",".join(f"{escape_name('field key', k)}={format_field(v)}" for k, v in fields)
    if not field_text:
        raise LineProtocolError("a point needs at least one field")
    parts.append(f" {field_text} {ts_ns}")
    return "".join(parts)
