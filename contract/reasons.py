"""Why a reading (or one of its fields) was refused: a stable code, the field, and a detail.

A dead letter's reason reads ``<code>: <detail>``, e.g. ``out_of_range: sinr_db=41.0 > 40``. The
code never carries a reading index or a value, so reasons group: ``code:field`` (or the code
alone) is what metrics, the dead-letter API and the ingester's summary count by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

ReasonCode = Literal[
    "out_of_range",
    "wrong_type",
    "invalid_value",
    "malformed",
    "too_long",
    "missing_field",
    "unknown_field",
    "too_old",
    "in_future",
    "position",
    "tag_clash",
    "not_finite",
    "invalid",
]
REASON_CODES: Final[tuple[ReasonCode, ...]] = get_args(ReasonCode)
"""Every code a reading-level or field-level reason may start with."""

_AT = re.compile(
    r"(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))?(?P<rest>[^`]*)`)?",
    re.S,
)
_BOUND = re.compile(r"Expected `[^`]+` (?P<op><=|>=|<|>) (?P<bound>\S+)")
_NAMED = re.compile(r"Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`")
_VIOLATED: Final = {"<=": ">", ">=": "<", "<": ">=", ">": "<="}


@dataclass(frozen=True, slots=True)
class Reason:
    """A classified reason.

    Attributes:
        code: the stable code.
        field: the field at fault ("" when the reading as a whole is).
        detail: human-readable detail (may carry the value).
    """

    code: ReasonCode
    field: str
    detail: str

    @property
    def key(self) -> str:
        """The grouping key: ``code:field``, or ``code`` without a field."""
        return f"{self.code}:{self.field}" if self.field else self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def fmt_value(value: object) -> str:
    """A value as reasons quote it (cut to 60 characters)."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text[:60]


def _bound(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def classify_validation(message: str, obj: dict[str, object] | None = None) -> Reason:
    """Classify a msgspec validation message (``Expected `float` <= 40.0 - at `$.sinr_db```).

    ``obj`` is the reading as plain data, used to quote the offending value.
    """
    m = _AT.fullmatch(message)
    text, field, rest = (m["msg"], m["field"] or "", m["rest"] or "") if m else (message, "", "")
    if m and m["key"]:  # a key of a mapping (a tag or generic field name): the mapping is at fault
        text = f"{text} (a key of {field or 'the reading'})"
    elif rest:  # an element inside a field (a tag value): the field as a whole is at fault
        text = f"{text} ({field}{rest})"
    named = _NAMED.match(text)
    if named:
        code: ReasonCode = "missing_field" if "missing" in text else "unknown_field"
        return Reason(code, named["field"], text)
    value = obj.get(field) if obj is not None and field else None
    bound = _BOUND.match(text)
    if bound and "length" not in text:
        op = _VIOLATED[bound["op"]]
        return Reason("out_of_range", field, f"{field}={fmt_value(value)} {op} {_bound(bound['bound'])}")
    if "of length" in text:
        code = "too_long" if "<=" in text else "invalid_value"
        return Reason(code, field, f"{field}: {text}")
    if text.startswith("Invalid enum value") or text.startswith("Invalid value"):
        return Reason("invalid_value", field, f"{field}={fmt_value(value)} is not one of the allowed values")
    if "matching regex" in text:
        what = f"{field}={fmt_value(value)}" if value is not None else field
        return Reason("malformed", field, f"{what}: {text}")
    if text.startswith("Expected `"):
        return Reason("wrong_type", field, f"{field}: {text}" if field else text)
    return Reason("invalid", field, f"{field}: {text}" if field else text)
