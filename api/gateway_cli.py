"""``parkwatch gateway``: gateway sites in the registry (the implementation is in :mod:`api.park_cli`)."""

from __future__ import annotations

from api.park_cli import GATEWAY_HELP as HELP
from api.park_cli import register_gateway as register

__all__ = ["HELP", "register"]
