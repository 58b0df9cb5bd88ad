"""Broker credentials for provisioned gateways: Mosquitto password hashes, password file, ACL, edge config.

Mosquitto 2 stores ``username:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` with a
12-byte salt and a 64-byte key (``mosquitto_passwd``'s format). A gateway's account may publish
only under its own ``up/`` topics and read only its own ``down/`` topics.

Every username written into a broker file is checked with the shared id syntax first
(:data:`contract.ids.ID`: a service account is one id, a gateway ``<park>/<gw>``), so a name with a
line break, ``:`` or a space can never add or break a line of the password or ACL file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from contract.ids import ID, check_id
from contract.topics import VERSION_SEGMENT, check_root


class BrokerFileError(ValueError):
    """A username or hash that cannot go into a Mosquitto password or ACL file."""


def gateway_username(park: str, gw: str) -> str:
    """Broker username of a gateway: ``<park>/<gw>`` (ids never contain ``/`` or ``:``).

    Raises:
        contract.errors.TopicError: ``park`` or ``gw`` is not a valid id.
    """
    return f"{check_id(park, 'park')}/{check_id(gw, 'gateway')}"


def check_username(username: str) -> str:
    """Return a broker username unchanged: one id (service account) or ``<park>/<gw>`` (gateway).

    Raises:
        BrokerFileError: anything else; it names the account and what to do.
    """
    parts = username.split("/")
    if not 1 <= len(parts) <= 2 or not all(ID.is_valid(p) for p in parts):
        raise BrokerFileError(
            f"broker account {username[:80]!r} is not a valid name ({ID.rule}, or <park>/<gateway>): "
            "remove it from the registry and provision it again under a valid name"
        )
    return username


def new_password() -> str:
    """A fresh random broker password (shown once): 32 URL-safe characters that never start with
    ``-``, so that it can follow ``--password`` on any command line (``-x...`` reads as an option)."""
    password = secrets.token_urlsafe(24)
    while password.startswith("-"):
        password = secrets.token_urlsafe(24)
    return password


def hash_password(password: str, *, iterations: int = 101, salt: bytes | None = None) -> str:
    """Mosquitto 2 ``$7$`` PBKDF2-SHA512 hash of ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (constant-time comparison)."""
    try:
        _, kind, iterations, salt_b64, dk_b64 = encoded.split("$")
        if kind != "7":
            return False
        salt, dk = base64.b64decode(salt_b64), base64.b64decode(dk_b64)
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations), dklen=len(dk))
    except ValueError:
        return False
    return hmac.compare_digest(got, dk)


def password_file(entries: Iterable[tuple[str, str]]) -> str:
    """Mosquitto ``password_file`` text from ``(username, hash)`` pairs.

    Raises:
        BrokerFileError: a username that is not a valid account name, or a hash that is not one
            line without ``:`` (nothing is returned, so no partial file is written).
    """
    lines = []
    for user, pw_hash in entries:
        if not pw_hash.isprintable() or ":" in pw_hash or not pw_hash:
            raise BrokerFileError(f"broker account {user[:80]!r} has a malformed password hash: reset it")
        lines.append(f"{check_username(user)}:{pw_hash}\n")
    return "".join(lines)


def ingest_accounts(ingest_username: str, services: Iterable[str]) -> list[str]:
    """The ingesters' broker accounts: ``ingest_username`` and each service ``<ingest_username>-<n>``.

    The deploy broker replaces every client id with the username (``use_username_as_clientid``),
    so each ingester of a shared subscription logs in with an account of its own, named after it
    (``parkwatch-ingest-1``, ``parkwatch-ingest-2``, ...); they all get the ingesters' rights.
    """
    if not ingest_username:
        return []
    prefix = f"{ingest_username}-"
    return sorted({ingest_username, *(u for u in services if u.startswith(prefix) and len(u) > len(prefix))})


def acl_file(
    gateways: Iterable[tuple[str, str]],
    *,
    topic_root: str,
    ingest_username: str = "",
    services: Iterable[str] = (),
) -> str:
    """Mosquitto ``acl_file`` text: each gateway on its own topics; the ingesters on all of them,
    and on the Sparkplug B namespace (read all, write STATE and NCMD). A Sparkplug edge node's
    own account (publishing ``spBv1.0/{group}/N*|D*/{node}``) is written by hand (docs/ingest.md).

    ``services`` are the registered service accounts: those named ``<ingest_username>-<n>`` are
    ingesters as well (see :func:`ingest_accounts`).
    """
    root = check_root(topic_root)
    lines = ["# Generated by parkwatch from its gateway registry. Do not edit: regenerate.", ""]
    for user in ingest_accounts(ingest_username, services):
        lines += [
            f"user {check_username(user)}",
            f"topic read {root}/{VERSION_SEGMENT}/+/+/up/#",
            f"topic write {root}/{VERSION_SEGMENT}/+/+/down/#",
            # Sparkplug B (docs/ingest.md): births, data and deaths of every group; the host
            # application's STATE; rebirth requests (NCMD) to edge nodes.
            "topic read spBv1.0/#",
            "topic write spBv1.0/STATE/#",
            "topic write spBv1.0/+/NCMD/#",
            "",
        ]
    for park, gw in gateways:
        user = gateway_username(park, gw)
        base = f"{root}/{VERSION_SEGMENT}/{user}"
        lines += [
            f"user {user}",
            f"topic write {base}/up/#",
            f"topic read {base}/down/#",
            "",
        ]
    return "\n".join(lines)


def edge_config(
    *, park: str, gw: str, username: str, password: str, host: str, port: int, topic_root: str, tls: bool
) -> str:
    """TOML text of a starting edge-agent config for one gateway (devices to be added on site).

    Rendered by the edge agent's own ``parkwatch edge init`` writer, so it always loads as the
    agent's settings.
    """
    from edge_agent.init_config import InitValues, render

    values = InitValues(
        park=park,
        gateway=gw,
        broker_host=host,
        broker_port=port,
        username=username,
        password=password,
        topic_root=topic_root,
        tls_ca="/etc/ssl/certs/ca-certificates.crt" if tls else "",
    )
    return "# Generated at provisioning. Keep it secret: it holds the broker password.\n" + render(values)
