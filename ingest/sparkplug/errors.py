"""Errors of the Sparkplug intake.

::

    SparkplugError   a message that cannot be taken: dead-letter it with ``reason`` (grouped by ``key``)
"""

from __future__ import annotations


class SparkplugError(Exception):
    """A Sparkplug message (or metric) refused for its content.

    Args:
        reason: what is wrong and what to do, for the dead letter.
        key: the grouping key for metrics and the dead-letter summary (``sparkplug_<key>``).
    """

    def __init__(self, reason: str, *, key: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = f"sparkplug_{key}"
