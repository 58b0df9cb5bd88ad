"""Numeric limits of wire contract version 1 (documented in docs/wire-contract.md)."""

from __future__ import annotations

from typing import Final

CONTRACT_VERSION: Final = 1

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Largest MQTT payload accepted for a telemetry batch."""

MAX_READINGS_PER_BATCH: Final = 1000
MAX_ID_LENGTH: Final = 64
MAX_STRING_LENGTH: Final = 128
"""Longest string field or tag value."""
MAX_TAGS_PER_READING: Final = 8
MAX_GENERIC_FIELDS: Final = 32

MAX_FUTURE_MS: Final = 5 * 60 * 1000
"""A reading may be stamped at most 5 minutes ahead of the receiver's clock."""
MAX_AGE_MS: Final = 30 * 24 * 3600 * 1000
"""A reading may be at most 30 days old when it arrives (edge buffers cover weeks offline)."""

MAX_DEAD_LETTER_RAW_BYTES: Final = 2048
"""Raw payload kept with a dead-letter record, truncated to this size."""
