"""parkwatch: IoT telemetry for smart industrial parks."""

from settings.runtime import __version__

__all__ = ["__version__"]
