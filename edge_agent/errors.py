"""Errors of the edge agent.

::

    EdgeError                  base of everything the agent raises on purpose
    ├── RetryableError         try again later (``retry_after`` seconds, or the caller's backoff)
    │   ├── DeviceError        a device did not answer or answered garbage; the collector backs off
    │   └── NotConnectedError  the broker is not reachable right now
    ├── PermanentError         drop and count: retrying cannot help
    │   └── PublishRejected    the broker refused a message (MQTT 5 reason code >= 0x80)
    └── ConfigError            fix the setup (re-exported from :mod:`settings.errors`)

Third-party exceptions (socket, paho) are translated at the boundary with
``raise ... from exc``.
"""

from __future__ import annotations

from settings.errors import ConfigError


class EdgeError(Exception):
    """Base of the edge agent's own errors."""


class RetryableError(EdgeError):
    """A failure that may go away: retry after ``retry_after`` seconds (None: caller's backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeviceError(RetryableError):
    """A device could not be read (unreachable, timeout, protocol error)."""


class NotConnectedError(RetryableError):
    """The MQTT broker is not connected."""


class PermanentError(EdgeError):
    """A failure that retrying cannot fix; drop and count."""


class PublishRejected(PermanentError):
    """The broker answered a publish with an error reason code (MQTT 5 only)."""

    def __init__(self, message: str, *, reason_code: int) -> None:
        super().__init__(message)
        self.reason_code = reason_code


__all__ = [
    "ConfigError",
    "DeviceError",
    "EdgeError",
    "NotConnectedError",
    "PermanentError",
    "PublishRejected",
    "RetryableError",
]
