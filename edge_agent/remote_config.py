"""Remote configuration: validate a ``down/config`` document against the running settings (pure).

The document's tables replace the same tables of the settings file; the result goes through the
same loader as the file (so errors name the key). ``[agent]``, ``[broker]`` and ``[buffer]``
cannot change remotely: they need a restart with an edited file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from contract.codec import decode_message
from contract.errors import PayloadError
from contract.messages import ConfigUpdate
from settings.edge import EdgeSettings
from settings.errors import ConfigError
from settings.loader import settings_from_dict

RESTART_SECTIONS: Final = ("agent", "broker", "buffer")
"""Sections a remote config may not change."""


def config_hash(settings: EdgeSettings) -> str:
    """A short stable hash of the effective settings (reported in the status)."""
    return hashlib.sha256(msgspec.json.encode(settings)).hexdigest()[:16]


def evaluate(payload: bytes, *, file_config: Mapping[str, Any], current: EdgeSettings) -> EdgeSettings:
    """The settings a ``ConfigUpdate`` payload asks for.

    Raises:
        ConfigError: the payload is not a contract ``ConfigUpdate``, a key is invalid, or it
            changes a section that needs a restart. The message is the reason put on status.
    """
    try:
        update = decode_message(payload, ConfigUpdate)
    except PayloadError as exc:
        raise ConfigError(f"remote config is not a valid ConfigUpdate: {exc.reason}") from exc
    new = settings_from_dict(EdgeSettings, {**file_config, **update.config}, where="remote config")
    changed = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(current, s)]
    if changed:
        raise ConfigError(
            f"remote config changes [{'], ['.join(changed)}], which need a restart: "
            "edit the settings file on the gateway instead"
        )
    return new
