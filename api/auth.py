"""API keys and roles: keys are random tokens stored only as SHA-256; roles are ordered.

A key is ``pwk_`` + 43 URL-safe base64 characters (32 random bytes). The server keeps
``sha256(key)`` and compares digests in constant time. Roles: viewer < planner < engineer < admin.
A key limited to parks never sees another park's data: every query is scoped to its parks.

Admin actions are scoped the same way. A park-limited admin manages only what lies inside its
parks: it may create keys whose parks are a non-empty subset of its own (never an all-parks key),
list only such keys, and read the broker entries of its parks' gateways only. Keys for all parks
and the broker's service accounts (the ingesters) are managed by an all-parks admin alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from api.errors import Forbidden, Unauthorized
from settings.api import Role as Role

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

    @property
    def all_parks(self) -> bool:
        """Whether this key is not limited to some parks."""
        return self.parks is None

    def covers(self, parks: Iterable[str]) -> bool:
        """Whether a key limited to ``parks`` (empty: all parks) lies within this key's parks."""
        wanted = frozenset(parks)
        if self.parks is None:
            return True
        return bool(wanted) and wanted <= self.parks

    def require_all_parks(self, action: str) -> None:
        """Raise :class:`Forbidden` unless this key may act on every park (``action`` names it)."""
        if self.parks is not None:
            raise Forbidden(
                f"only an admin key for all parks may {action}; the key {self.name!r} is limited to "
                f"{', '.join(sorted(self.parks))}: ask an all-parks admin"
            )

    def require_grant(self, role: Role, parks: Iterable[str]) -> None:
        """Raise :class:`Forbidden` unless this key may create a key with ``role`` and ``parks``.

        A new key's role is at most this key's role and its parks lie within this key's parks;
        an empty ``parks`` (all parks) needs an all-parks key.
        """
        if ROLE_RANK[role] > ROLE_RANK[self.role]:
            raise Forbidden(
                f"the key {self.name!r} ({self.role!r}) may not create a key with the higher role {role!r}"
            )
        wanted = frozenset(parks)
        if self.parks is None:
            return
        mine = ", ".join(sorted(self.parks))
        if not wanted:
            raise Forbidden(
                f"the key {self.name!r} is limited to {mine} and may not create a key for all parks: "
                f"list the parks of the new key (a subset of {mine})"
            )
        outside = sorted(wanted - self.parks)
        if outside:
            raise Forbidden(
                f"the key {self.name!r} may not create a key for park(s) {', '.join(outside)}: "
                f"it is limited to {mine}"
            )


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

    def knows(self, digest: str) -> bool:
        """Whether a key with this SHA-256 is valid now (a revoked key is not)."""
        return digest in self._by_hash

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; :class:`Unauthorized` when missing or unknown."""
        if not presented:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        digest = key_hash(presented)
        record = self._by_hash.get(digest)
        if record is None or not hmac.compare_digest(record.sha256, digest):
            raise Unauthorized("unknown API key: ask an admin for a valid key")
        return Principal(name=record.name, role=record.role, parks=frozenset(record.parks) or None)
