"""Fleet: per gateway, when it was last seen, whether it is online, what it reported, its loss ledger."""

from __future__ import annotations

from typing import Any

from api import models
from api.services.common import as_float, as_int
from settings.api import ApiSettings
from storage.query import QueryBackend, Scope


class FleetService:
    """Fleet answers over one backend (never cached: the fleet view is live)."""

    def __init__(self, settings: ApiSettings, backend: QueryBackend) -> None:
        self.settings = settings
        self.backend = backend

    def gateways(self, scope: Scope, now_ms: int) -> list[models.Gateway]:
        """Every gateway with a status or a loss ledger in the scope's parks, ordered by (park, gw)."""
        latest = self.backend.status(scope, latest=True)
        ledger = {(str(r["park"]), str(r["gw"])): r for r in self.backend.ledger(scope).rows()}
        offline_ms = self.settings.alarms.gateway_offline_after_s * 1000
        out: dict[tuple[str, str], models.Gateway] = {}
        for r in latest.rows():
            key = (str(r["park"]), str(r["gw"]))
            led = ledger.get(key)
            last_seen = max(int(r["ts_ms"]), int(led["ts_ms"]) if led else 0)
            out[key] = models.Gateway(
                park=key[0],
                gw=key[1],
                last_seen_ms=last_seen,
                online=r["state"] == "online" and now_ms - last_seen < offline_ms,
                reported_state=r["state"],
                agent_version=r["agent_version"],
                config_hash=r["config_hash"],
                config_error=r["config_error"],
                backlog=as_int(r["backlog"]),
                dropped=as_int(r["dropped"]),
                unconfirmed=as_int(r["unconfirmed"]),
                expired=as_int(r["expired"]),
                buffer_pct=as_float(r["buffer_pct"]),
                uplink=models.Uplink(
                    operator=r["uplink_operator"],
                    tech=r["uplink_tech"],
                    rsrp_dbm=as_float(r["uplink_rsrp_dbm"]),
                    sinr_db=as_float(r["uplink_sinr_db"]),
                ),
                loss=_loss(led),
            )
        for key, led in ledger.items():
            if key not in out:
                out[key] = models.Gateway(
                    park=key[0],
                    gw=key[1],
                    last_seen_ms=int(led["ts_ms"]),
                    online=now_ms - int(led["ts_ms"]) < offline_ms,
                    reported_state=None,
                    loss=_loss(led),
                )
        return [out[k] for k in sorted(out)]


def _loss(led: dict[str, Any] | None) -> models.Loss | None:
    if led is None:
        return None
    return models.Loss(
        received=as_int(led["received"]),
        missing=as_int(led["missing"]),
        duplicated=as_int(led["duplicated"]),
        late=as_int(led["late"]),
        last_seq=as_int(led["last_seq"]),
        restarts=as_int(led["restarts"]),
        ts_ms=int(led["ts_ms"]),
    )
