"""Errors of the ingester, classified by what the caller should do.

::

    IngestError
    ├── RetryableError(retry_after_s)   the sink cannot take the batch now: spool it, retry later
    ├── PermanentError                  the data can never be written: dead-letter and count it
    └── ConfigError                     the setup is wrong (settings.errors.ConfigError re-exported)

A rejected reading or batch is not an exception: it becomes a
:class:`ingest.model.DeadLetter` beside the valid readings.
"""

from __future__ import annotations

from settings.errors import ConfigError


class IngestError(Exception):
    """Any ingester failure."""


class RetryableError(IngestError):
    """The sink is unavailable or overloaded; retry after ``retry_after_s`` (or a backoff)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(IngestError):
    """Data that can never be written as it is."""


__all__ = ["ConfigError", "IngestError", "PermanentError", "RetryableError"]
