"""Provisioning and admin routes: gateways' MQTT credentials, broker files, service accounts, API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api import mosquitto
from api.auth import key_hash, new_key
from api.deps import (
    BODY_UNREADABLE,
    CONFLICT,
    NOT_FOUND,
    Admin,
    Context,
    Engineer,
    GatewayIn,
    GwPath,
    KeyIn,
    KeyNamePath,
    ParkRequired,
    UserPath,
)
from api.errors import Conflict, NotFound


def build(ctx: Context) -> APIRouter:
    """The routes of this module over ``ctx``."""
    v1 = APIRouter(prefix="/api/v1")
    settings, registry = ctx.settings, ctx.registry
    invalidate_keys, config_keys = ctx.invalidate_keys, ctx.config_keys

    def _issue(park: str, gw: str, *, new: bool, description: str = "") -> dict[str, Any]:
        prov = settings.provisioning
        password = mosquitto.new_password()
        pw_hash = mosquitto.hash_password(password, iterations=prov.pbkdf2_iterations)
        username = mosquitto.gateway_username(park, gw)
        if new:
            registry.add_gateway(
                park=park, gw=gw, description=description, username=username, password_hash=pw_hash
            )
        else:
            registry.set_password(park=park, gw=gw, password_hash=pw_hash)
        return {
            "park": park,
            "gw": gw,
            "mqtt": {
                "host": prov.broker_host,
                "port": prov.broker_port,
                "username": username,
                "password": password,
            },
            "edge_config": mosquitto.edge_config(
                park=park,
                gw=gw,
                username=username,
                password=password,
                host=prov.broker_host,
                port=prov.broker_port,
                topic_root=prov.topic_root,
                tls=prov.tls,
            ),
            "note": "the password is shown only once; regenerate the broker's password and ACL files",
        }

    @v1.post(
        "/gateways",
        tags=["provisioning"],
        status_code=201,
        responses={**CONFLICT, **BODY_UNREADABLE},
        summary="Register a gateway; returns its credentials once.",
    )
    def register_gateway(p: Engineer, body: GatewayIn) -> dict[str, Any]:
        p.scope_parks(body.park)
        return _issue(body.park, body.gw, new=True, description=body.description)

    @v1.post(
        "/gateways/{gw}/credentials",
        tags=["provisioning"],
        responses=NOT_FOUND,
        summary="Issue new MQTT credentials for a gateway.",
    )
    def rotate_credentials(p: Engineer, gw: GwPath, park: ParkRequired) -> dict[str, Any]:
        p.scope_parks(park)
        if registry.gateway(park, gw) is None:
            raise NotFound(f"gateway {gw!r} of park {park!r} is not registered: POST /api/v1/gateways first")
        return _issue(park, gw, new=False)

    @v1.delete(
        "/gateways/{gw}",
        tags=["provisioning"],
        responses=NOT_FOUND,
        summary="Remove a gateway and its MQTT credentials (regenerate the broker's files afterwards).",
    )
    def remove_gateway(p: Engineer, gw: GwPath, park: ParkRequired) -> dict[str, Any]:
        p.scope_parks(park)
        registry.delete_gateway(park, gw)
        return {
            "park": park,
            "gw": gw,
            "removed": True,
            "note": "regenerate the broker's password and ACL files (mosquitto-files) and reload the broker; "
            "its stored data stay",
        }

    @v1.get(
        "/provisioning/mosquitto/passwd",
        tags=["provisioning"],
        response_class=PlainTextResponse,
        summary="Mosquitto password file of the provisioned accounts the key may manage.",
    )
    def mosquitto_passwd(p: Admin) -> PlainTextResponse:
        # A park-limited admin gets its parks' gateways only: never another park's hashes nor
        # the service accounts', which give access to every park.
        entries = [(g.username, g.password_hash) for g in registry.gateways(p.parks)]
        if p.all_parks:
            entries += registry.services()
        return PlainTextResponse(mosquitto.password_file(entries))

    @v1.get(
        "/provisioning/mosquitto/acl",
        tags=["provisioning"],
        response_class=PlainTextResponse,
        summary="Mosquitto ACL file: each gateway (of the key's parks) on its own topics.",
    )
    def mosquitto_acl(p: Admin) -> PlainTextResponse:
        prov = settings.provisioning
        text = mosquitto.acl_file(
            [(g.park, g.gw) for g in registry.gateways(p.parks)],
            topic_root=prov.topic_root,
            ingest_username=prov.ingest_username if p.all_parks else "",
            services=[user for user, _ in registry.services()] if p.all_parks else (),
        )
        return PlainTextResponse(text)

    @v1.post(
        "/provisioning/services/{username}",
        tags=["provisioning"],
        summary="Create or reset a service account (e.g. an ingester; all-parks admins only); returns its password once.",
    )
    def service_account(p: Admin, username: UserPath) -> dict[str, Any]:
        p.require_all_parks("manage the broker's service accounts")
        password = mosquitto.new_password()
        registry.set_service(
            username=username,
            password_hash=mosquitto.hash_password(
                password, iterations=settings.provisioning.pbkdf2_iterations
            ),
        )
        return {"username": username, "password": password}

    @v1.post(
        "/keys",
        tags=["admin"],
        status_code=201,
        responses={**CONFLICT, **BODY_UNREADABLE},
        summary="Create an API key under a unique name; returns it once.",
    )
    def create_key(p: Admin, body: KeyIn) -> dict[str, Any]:
        parks = body.checked_parks()
        p.require_grant(body.role, parks)
        if any(k.name == body.name for k in config_keys):
            raise Conflict(f"an API key named {body.name!r} is defined in the config file: pick another name")
        key = new_key()
        registry.add_key(sha256=key_hash(key), name=body.name, role=body.role, parks=parks)
        invalidate_keys()
        return {"name": body.name, "role": body.role, "parks": list(parks), "key": key}

    @v1.get("/keys", tags=["admin"], summary="API keys (names, roles, parks; never the keys).")
    def list_keys(p: Admin) -> dict[str, Any]:
        # A park-limited admin sees only the keys it could have created: those within its parks.
        items = [
            {"name": k.name, "role": k.role, "parks": list(k.parks), "source": source}
            for source, keys in (("registry", registry.api_keys()), ("config", config_keys))
            for k in keys
            if p.covers(k.parks)
        ]
        return {"items": items}

    @v1.delete(
        "/keys/{name}",
        tags=["admin"],
        responses={**NOT_FOUND, **CONFLICT},
        summary="Revoke an API key by name; it is refused from the next request on.",
    )
    def revoke_key(p: Admin, name: KeyNamePath) -> dict[str, Any]:
        if any(k.name == name for k in config_keys):
            raise Conflict(
                f"API key {name!r} is defined in the config file ([[keys]]): remove it there and restart"
            )
        key = next((k for k in registry.api_keys() if k.name == name), None)
        # A key outside the admin's parks is answered like a missing one: its existence is not the
        # admin's business.
        if key is None or not p.covers(key.parks):
            raise NotFound(f"no API key named {name!r} in the registry (GET /api/v1/keys lists them)")
        registry.delete_key(name)
        invalidate_keys()
        return {"name": name, "revoked": True}

    return v1
