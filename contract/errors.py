"""Errors raised by the wire contract.

::

    ContractError            the bytes or the topic break the contract; drop and dead-letter
    ├── TopicError           a topic outside the scheme, or an id with forbidden characters
    └── PayloadError         a payload that cannot be decoded as a whole (not one bad reading)

One bad reading inside an otherwise valid batch is *not* an exception: it comes back as a
:class:`contract.codec.Rejected` beside the valid readings.
"""

from __future__ import annotations


class ContractError(ValueError):
    """Input that breaks the wire contract. ``reason`` is short, stable and human-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TopicError(ContractError):
    """A topic that is not a parkwatch topic, or carries an invalid id."""


class PayloadError(ContractError):
    """A payload that is rejected as a whole: too large, not JSON/MessagePack, wrong envelope."""
