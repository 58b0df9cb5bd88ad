"""Identifiers that appear in topics: park, gateway and device ids."""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

from contract.errors import TopicError
from contract.limits import MAX_ID_LENGTH

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
"""Letters, digits, ``_ . -``; starts with a letter or digit; 1-64 characters.

No ``/ + # $``, spaces or control characters, so an id can never widen an MQTT topic
filter, and it is safe as an InfluxDB tag and in a file name.
"""
_ID_RE: Final = re.compile(ID_PATTERN)

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a valid park, gateway or device id."""
    return bool(_ID_RE.match(value)) and value.isascii()


def check_id(value: str, what: str) -> str:
    """Return ``value`` unchanged, or raise :class:`TopicError` naming ``what`` is wrong."""
    if not is_valid_id(value):
        raise TopicError(
            f"invalid {what} id {value[:80]!r}: use 1-{MAX_ID_LENGTH} characters from "
            "A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    return value
