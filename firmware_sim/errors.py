"""Errors raised by the firmware simulator.

::

    SimError                 base of everything the simulator raises on purpose
    ├── ScenarioError        the scenario file is wrong: fix the named key (also a settings ConfigError)
    └── DeviceStartError     a simulated device could not start (port in use, no IPv6 loopback)
"""

from __future__ import annotations

from settings.errors import ConfigError


class SimError(Exception):
    """Base class of the simulator's own errors."""


class ScenarioError(SimError, ConfigError):
    """An invalid scenario. The message names the file and the key, e.g. ``parks[0].gateways[1].lat``."""


class DeviceStartError(SimError):
    """A simulated device could not be started; the message says which and why."""
