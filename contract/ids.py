"""Identifiers, keys and names: one full-match syntax for each, shared by every validator.

Park, gateway and device ids, tag keys, field names, operator names, API key names and service
account names are checked here, and only here: the contract's msgspec models, the settings, the
API's query, path and body parameters and provisioning all take their pattern from a
:class:`Syntax` of this module.

Why the patterns end in ``(?!\\n)$``
------------------------------------
A pattern is read by three regex dialects:

- Python ``re`` (msgspec's ``Meta(pattern=...)``, which calls ``re.search``, and the checks of
  this module). There ``$`` also matches *before a trailing newline*, so ``^[a-z]+$`` accepts
  ``"abc\\n"``: an id ending in a newline becomes a second line of InfluxDB line protocol or of
  Mosquitto's password file. ``\\Z`` would fix that, but it is not valid ECMA-262.
- ECMA-262 in the generated JSON Schema and the OpenAPI document (``$`` is the end of the
  input there; ``\\Z`` is an unknown escape, read as a literal ``Z`` by lenient engines).
- pydantic-core's default Rust ``regex`` engine (FastAPI ``Query``/``Path``, pydantic
  ``Field``), which has ``$`` as the end of the input but no lookaround at all.

``^(?:X)(?!\\n)$`` is exact in Python ``re`` (the lookahead rules out the position before a
final newline) and in ECMA-262 (where it is redundant). For pydantic, :attr:`Syntax.regex` hands
over the *compiled* Python pattern: pydantic-core then validates with Python ``re`` and still
writes the pattern's text into the OpenAPI document. The bodies use only ASCII classes
(``[0-9]``, never ``\\d``, which takes any Unicode digit in Python), so a character class can
never let a control character, a Unicode line separator or a non-ASCII digit through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec

from contract.errors import TopicError
from contract.limits import MAX_ID_LENGTH


def full_match(body: str) -> str:
    """A pattern matching exactly ``body``, whole string, in Python ``re`` and ECMA-262 alike."""
    return rf"^(?:{body})(?!\n)$"


@dataclass(frozen=True, slots=True)
class Syntax:
    """The syntax of one kind of identifier.

    Attributes:
        body: the pattern without anchors, to build a related pattern with :func:`full_match`.
        pattern: full-match pattern text, for msgspec ``Meta``, JSON Schema and OpenAPI.
        regex: the compiled pattern; give it to pydantic (``Field``/``Query(pattern=...)``) so
            that pydantic-core validates with Python ``re`` (its Rust engine has no lookahead).
        max_length: the longest valid value, in characters.
        rule: the rule in words, for error messages.
    """

    body: str
    pattern: str
    regex: re.Pattern[str]
    max_length: int
    rule: str

    def is_valid(self, value: str) -> bool:
        """Whether the whole of ``value`` follows this syntax."""
        return self.regex.fullmatch(value) is not None


def syntax(body: str, *, max_length: int, rule: str) -> Syntax:
    """A :class:`Syntax` from the body of its pattern (no anchors)."""
    pattern = full_match(body)
    return Syntax(body=body, pattern=pattern, regex=re.compile(pattern), max_length=max_length, rule=rule)


ID: Final = syntax(
    r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}",
    max_length=MAX_ID_LENGTH,
    rule=f"1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ . -, starting with a letter or digit",
)
"""Park, gateway and device ids, topic root segments, broker service account names.

No ``/ + # $ :``, spaces or control characters, so an id can never widen an MQTT topic filter or
split a Mosquitto password line, and it is safe as an InfluxDB tag and in a file name.
"""

TAG_KEY: Final = syntax(
    r"[a-z][a-z0-9_]{0,31}",
    max_length=32,
    rule="1-32 characters from a-z 0-9 _, starting with a letter",
)
"""Keys of a reading's free ``tags``."""

FIELD_NAME: Final = syntax(
    r"[a-z][a-z0-9_]{0,63}",
    max_length=64,
    rule="1-64 characters from a-z 0-9 _, starting with a letter",
)
"""Field (column) names: generic readings' values, Modbus register fields, queried columns."""

NAME: Final = syntax(
    r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}",
    max_length=64,
    rule="1-64 characters from A-Z a-z 0-9 space _ . -, starting with a letter or digit",
)
"""Display names that may hold spaces, such as a mobile operator's name."""

KEY_NAME: Final = syntax(
    r"[A-Za-z0-9][A-Za-z0-9 _.@\-]{0,63}",
    max_length=64,
    rule="1-64 characters from A-Z a-z 0-9 space _ . @ -, starting with a letter or digit",
)
"""Names of API keys (an e-mail address fits)."""

BAND: Final = syntax(r"[Bn][0-9]{1,3}", max_length=4, rule="B or n and 1-3 digits (B3, n78)")
"""3GPP band: ``B<n>`` for LTE, ``n<n>`` for NR."""

BSSID: Final = syntax(
    r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", max_length=17, rule="six lower-case hex pairs joined by ':'"
)
"""A Wi-Fi BSSID (MAC address), lower case."""

SHA256_HEX: Final = syntax(r"[0-9a-f]{64}", max_length=64, rule="64 lower-case hex digits")
"""A SHA-256 digest in lower-case hex."""

ID_PATTERN: Final = ID.pattern
"""Full-match pattern of :data:`ID` (for msgspec ``Meta`` and JSON Schema)."""

TAG_KEY_PATTERN: Final = TAG_KEY.pattern
FIELD_NAME_PATTERN: Final = FIELD_NAME.pattern

Id = Annotated[str, msgspec.Meta(pattern=ID.pattern, max_length=ID.max_length)]
TagKey = Annotated[str, msgspec.Meta(pattern=TAG_KEY.pattern, max_length=TAG_KEY.max_length)]
FieldName = Annotated[str, msgspec.Meta(pattern=FIELD_NAME.pattern, max_length=FIELD_NAME.max_length)]


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a valid park, gateway or device id."""
    return ID.is_valid(value)


def check_id(value: str, what: str) -> str:
    """Return ``value`` unchanged, or raise :class:`TopicError` naming ``what`` is wrong."""
    if not ID.is_valid(value):
        raise TopicError(f"invalid {what} id {value[:80]!r}: use {ID.rule}")
    return value
