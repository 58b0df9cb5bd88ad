"""Errors of the ingester, classified by what the caller should do.

::

    IngestError
    └── PermanentError                  the data can never be written: dead-letter and count it
    RetryableError(retry_after_s)       the sink cannot take the batch now: spool it, retry later
    ConfigError                         the setup is wrong

RetryableError and ConfigError are shared by every package (re-exported from :mod:`settings.errors`).

A rejected reading or batch is not an exception: it becomes a
:class:`ingest.model.DeadLetter` beside the valid readings.
"""

from __future__ import annotations

from settings.errors import ConfigError, RetryableError


class IngestError(Exception):
    """Any ingester failure of its own (retryable and configuration errors are shared, see above)."""


class PermanentError(IngestError):
    """Data that can never be written as it is."""


__all__ = ["ConfigError", "IngestError", "PermanentError", "RetryableError"]
