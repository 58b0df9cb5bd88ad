"""Typed settings for every deployable, loaded from TOML with ``PARKWATCH_*`` overrides."""

from settings.common import BrokerSettings, LoggingSettings, TlsSettings
from settings.errors import ConfigError
from settings.loader import apply_env, load_settings, settings_from_dict

__all__ = [
    "BrokerSettings",
    "ConfigError",
    "LoggingSettings",
    "TlsSettings",
    "apply_env",
    "load_settings",
    "settings_from_dict",
]
