"""Errors of the edge agent.

::

    EdgeError                  base of everything the agent raises on purpose
    ├── DeviceError        (R) a device did not answer or answered garbage; the collector backs off
    ├── NotConnectedError  (R) the broker is not reachable right now
    └── PermanentError         drop and count: retrying cannot help
        └── PublishRejected    the broker refused a message (MQTT 5 reason code >= 0x80)

    (R) is also a RetryableError: try again later (``retry_after_s`` seconds, or the caller's
    backoff). RetryableError and ConfigError (fix the setup) are shared by every package and
    re-exported from :mod:`settings.errors`.

Third-party exceptions (socket, paho) are translated at the boundary with
``raise ... from exc``.
"""

from __future__ import annotations

from settings.errors import ConfigError, RetryableError


class EdgeError(Exception):
    """Base of the edge agent's own errors."""


class DeviceError(EdgeError, RetryableError):
    """A device could not be read (unreachable, timeout, protocol error).

    Args:
        message: what went wrong.
        fix: what to do about it, when the reader knows better than a generic hint
            (``edge doctor`` prints it under the failure).
    """

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class NotConnectedError(EdgeError, RetryableError):
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
