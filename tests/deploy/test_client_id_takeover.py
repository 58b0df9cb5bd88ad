"""No account can take over another's MQTT session on the deploy broker.

Mosquitto 2 runs with the whole deploy/mosquitto/mosquitto.conf and the files the deployment's
``broker-auth`` job generates. Each attack also runs against the same config without
``use_username_as_clientid`` (the control), where it succeeds: the tests see the takeover when
it happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contract import encode, kind_of, topic_for
from settings.ingest import IngestSettings
from settings.loader import settings_from_dict
from tests.deploy.broker_helpers import (
    CLIENT_ID_BINDING,
    INGEST_USER,
    INGESTER_1,
    PARK,
    TIMEOUT_S,
    Broker,
    Client,
    deploy_broker,
    generate_files,
)
from tests.ingest.helpers import batch_for, running, wait_until

pytestmark = pytest.mark.integration

SESSION_S = 3600


@pytest.fixture(params=["bound", "control"])
def broker(
    request: pytest.FixtureRequest, tmp_path: Path, topic_root: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Broker]:
    """The deploy broker ("bound"), or the same without the client-id binding ("control")."""
    auth_dir, passwords = generate_files(tmp_path, topic_root, monkeypatch)
    drop = [CLIENT_ID_BINDING] if request.param == "control" else []
    server = deploy_broker(tmp_path, auth_dir, drop_lines=drop)
    server.start()
    yield Broker(server=server, root=topic_root, passwords=passwords)
    server.stop()


def _bound(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["broker"] == "bound")


def _down(b: Broker, gw: str) -> str:
    return topic_for(PARK, gw, "command", root=b.root)


def _connected(client: Client) -> Client:
    assert not client.connected().is_failure
    return client


def test_a_gateway_cannot_disconnect_another_by_its_client_id(
    broker: Broker, request: pytest.FixtureRequest
) -> None:
    ingest = _connected(Client(broker, INGEST_USER))
    victim = _connected(Client(broker, f"{PARK}/gw-b", client_id=f"{PARK}/gw-b"))
    try:
        assert not victim.subscribe(_down(broker, "gw-b")).is_failure
        thief = _connected(Client(broker, f"{PARK}/gw-a", client_id=f"{PARK}/gw-b"))
        try:
            # After the thief's CONNACK, a command for the victim: the first thing the victim
            # sees is that command on its own connection, or (control) its eviction.
            assert not ingest.publish(_down(broker, "gw-b"), b"live").is_failure
            kind, detail = victim.events.get(timeout=TIMEOUT_S)
            if _bound(request):
                assert (kind, detail) == ("message", (_down(broker, "gw-b"), b"live"))
            else:
                # Mosquitto 2.0 closes the evicted connection (paho reports it as unspecified).
                assert kind == "disconnect", (kind, detail)
        finally:
            thief.close()
    finally:
        victim.close()
        ingest.close()


def test_a_gateway_cannot_take_another_gateways_queued_commands(
    broker: Broker, request: pytest.FixtureRequest
) -> None:
    victim_id = f"{PARK}/gw-b"
    victim = _connected(
        Client(broker, victim_id, client_id=victim_id, clean_start=False, session_expiry_s=SESSION_S)
    )
    assert not victim.subscribe(_down(broker, "gw-b")).is_failure
    victim.close()
    ingest = _connected(Client(broker, INGEST_USER))
    try:
        queued = [f"cmd-{i}".encode() for i in range(3)]
        for payload in queued:
            assert not ingest.publish(_down(broker, "gw-b"), payload).is_failure
        # The thief resumes "the victim's" session: it gets its own on the deploy broker.
        thief = _connected(
            Client(broker, f"{PARK}/gw-a", client_id=victim_id, clean_start=False, session_expiry_s=SESSION_S)
        )
        assert thief.session_present is (not _bound(request))
        thief.close()
        back = _connected(
            Client(broker, victim_id, client_id=victim_id, clean_start=False, session_expiry_s=SESSION_S)
        )
        try:
            assert not back.subscribe(_down(broker, "gw-b")).is_failure
            assert not ingest.publish(_down(broker, "gw-b"), b"sentinel").is_failure
            got = back.payloads_until(b"sentinel")
        finally:
            back.close()
    finally:
        ingest.close()
    assert got == ([*queued, b"sentinel"] if _bound(request) else [b"sentinel"])


def _ingest_settings(b: Broker, tmp_path: Path) -> IngestSettings:
    """The deployment's ingester settings (own account, shared subscription), DuckDB as the sink."""
    data: dict[str, Any] = {
        "broker": {
            "host": b.server.host,
            "port": b.server.port,
            "username": INGESTER_1,
            "password": b.passwords[INGESTER_1],
            "topic_root": b.root,
            "protocol": "5",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
        "sink": {"type": "duckdb", "path": str(tmp_path / "store.duckdb")},
        "ingest": {
            "share_group": "ingest",
            "spool_dir": str(tmp_path / "spool"),
            "metrics_enabled": False,
            "flush_interval_s": 0.05,
            "retry_min_s": 0.1,
            "retry_max_s": 0.5,
        },
    }
    settings = settings_from_dict(IngestSettings, data)
    assert settings.client_id == INGESTER_1, "the ingester's client id is its username"
    return settings


def _stored_of(path: Path, gw: str, kinds: set[str]) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        total = 0
        for kind in sorted(kinds):
            row = con.execute(f"SELECT count(*) FROM {kind} WHERE gw = ?", [gw]).fetchone()
            total += int(row[0]) if row else 0
        return total


async def test_nobody_wipes_the_ingesters_session_while_it_is_down(
    broker: Broker, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = _ingest_settings(broker, tmp_path)
    async with running(settings):
        pass  # the persistent session and its shared subscription now exist; the ingester stops
    batches = [batch_for("gw-a", seq, 10) for seq in range(1, 6)]
    sentinel = batch_for("gw-b", 1, 3)
    kinds = {kind_of(r) for b in [*batches, sentinel] for r in b.readings}

    def while_down() -> None:
        gw_a = _connected(Client(broker, f"{PARK}/gw-a"))
        for b in batches:
            assert not gw_a.publish(
                topic_for(PARK, "gw-a", "telemetry", root=broker.root), encode(b)
            ).is_failure
        gw_a.close()
        # Another account connects with the ingester's client id and a clean start, then leaves.
        thief = _connected(Client(broker, f"{PARK}/gw-b", client_id=settings.client_id, clean_start=True))
        thief.close()

    await asyncio.to_thread(while_down)
    async with running(settings) as ing:
        gw_b = await asyncio.to_thread(lambda: _connected(Client(broker, f"{PARK}/gw-b")))
        rc = await asyncio.to_thread(
            gw_b.publish, topic_for(PARK, "gw-b", "telemetry", root=broker.root), encode(sentinel)
        )
        assert not rc.is_failure
        gw_b.close()
        # The queued batches come before the sentinel on the same session; once the sentinel is
        # in and nothing is pending or spooled, everything delivered is stored.
        await wait_until(
            lambda: (
                ing.ledger.totals()["received"].get("gw-b", 0) >= 1
                and ing.consumer.pending == 0
                and ing.spool.depth == 0
            ),
            what="the sentinel batch stored",
        )
    db = tmp_path / "store.duckdb"
    assert _stored_of(db, "gw-b", kinds) == 3
    queued_readings = sum(len(b.readings) for b in batches)
    assert _stored_of(db, "gw-a", kinds) == (queued_readings if _bound(request) else 0)


def test_the_doctor_leaves_a_stopped_agents_queued_commands(broker: Broker) -> None:
    """On the deploy broker the doctor gets the agent's client id: it must neither wipe nor drain it."""
    from edge_agent.doctor import check_mqtt
    from settings.edge import EdgeSettings

    agent_id = f"{PARK}/gw-a"
    settings = settings_from_dict(
        EdgeSettings,
        {
            "agent": {"park": PARK, "gateway": "gw-a", "session_expiry_s": SESSION_S},
            "broker": {
                "host": broker.server.host,
                "port": broker.server.port,
                "username": agent_id,
                "password": broker.passwords["gw-a"],
                "topic_root": broker.root,
            },
        },
    )
    assert settings.client_id == agent_id, "the agent's client id is its username"
    agent = _connected(
        Client(broker, agent_id, client_id=agent_id, clean_start=False, session_expiry_s=SESSION_S)
    )
    assert not agent.subscribe(_down(broker, "gw-a")).is_failure
    agent.close()
    ingest = _connected(Client(broker, INGEST_USER))
    try:
        queued = [b"cmd-1", b"cmd-2"]
        for payload in queued:
            assert not ingest.publish(_down(broker, "gw-a"), payload).is_failure
        checks = check_mqtt(settings)
        assert [(c.name, c.result) for c in checks] == [
            ("credentials", "pass"),
            ("acl publish", "pass"),
            ("acl subscribe", "pass"),
        ]
        back = _connected(
            Client(broker, agent_id, client_id=agent_id, clean_start=False, session_expiry_s=SESSION_S)
        )
        try:
            assert back.session_present
            assert not ingest.publish(_down(broker, "gw-a"), b"sentinel").is_failure
            assert back.payloads_until(b"sentinel") == [*queued, b"sentinel"]
        finally:
            back.close()
    finally:
        ingest.close()
