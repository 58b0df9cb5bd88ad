"""Errors of settings loading.

::

    ConfigError     the setup is wrong: fix the named key in the named file or variable
"""

from __future__ import annotations


class ConfigError(Exception):
    """Invalid or missing configuration. The message names the key and where it came from."""
