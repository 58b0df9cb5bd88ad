"""Errors every package shares; each package's ``errors.py`` re-exports them into its own tree.

::

    ConfigError      the setup is wrong: fix the named key in the named file or variable
    RetryableError   try again later: after ``retry_after_s`` seconds, or the caller's backoff
"""

from __future__ import annotations


class ConfigError(Exception):
    """Invalid or missing configuration. The message names the key and where it came from."""


class RetryableError(Exception):
    """A failure that may go away: retry after ``retry_after_s`` seconds (None: the caller's backoff).

    Args:
        message: what failed, for the log.
        retry_after_s: how long the other side asked to wait (``Retry-After``), if it said.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
