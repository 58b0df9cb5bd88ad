"""API keys and roles: keys are random tokens stored only as SHA-256; roles are ordered.

A key is ``pwk_`` + 43 URL-safe base64 characters (32 random bytes). The server keeps
``sha256(key)`` and compares digests in constant time. Roles: viewer < planner < engineer < admin.
A key limited to parks never sees another park's data: every query is scoped to its parks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from api.errors import Forbidden, Unauthorized

Role = Literal["viewer", "planner", "engineer", "admin"]
ROLE_RANK: Final[dict[str, int]] = {"viewer": 0, "planner": 1, "engineer": 2, "admin": 3}
KEY_PREFIX: Final = "pwk_"


def new_key() -> str:
    """A fresh random API key (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """Hex SHA-256 of a key, the only form the server stores."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: key name, role and the parks it may see (``None``: all parks)."""

    name: str
    role: Role
    parks: frozenset[str] | None

    def require(self, role: Role) -> None:
        """Raise :class:`Forbidden` unless this key's role is at least ``role``."""
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(f"this needs the {role!r} role; the key {self.name!r} has {self.role!r}")

    def scope_parks(self, park: str | None) -> tuple[str, ...] | None:
        """The parks a query may read: the requested one if allowed, else all allowed ones."""
        if park is not None:
            if self.parks is not None and park not in self.parks:
                raise Forbidden(f"the key {self.name!r} may not read park {park!r}")
            return (park,)
        return None if self.parks is None else tuple(sorted(self.parks))

    def may_see(self, park: str) -> bool:
        return self.parks is None or park in self.parks


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    """A stored key: its hash, name, role and parks (empty: all)."""

    sha256: str
    name: str
    role: Role
    parks: tuple[str, ...]


class KeyRing:
    """Keys from the config file and the registry, looked up by the hash of the presented key."""

    def __init__(self, records: Iterable[KeyRecord]) -> None:
        self._by_hash = {r.sha256: r for r in records}

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; :class:`Unauthorized` when missing or unknown."""
        if not presented:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        digest = key_hash(presented)
        record = self._by_hash.get(digest)
        if record is None or not hmac.compare_digest(record.sha256, digest):
            raise Unauthorized("unknown API key: ask an admin for a valid key")
        return Principal(name=record.name, role=record.role, parks=frozenset(record.parks) or None)
