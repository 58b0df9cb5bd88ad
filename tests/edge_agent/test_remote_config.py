"""Remote config validation and application, without a broker (unit)."""

from __future__ import annotations

from pathlib import Path

from contract.codec import encode
from contract.messages import ConfigUpdate
from edge_agent.agent import Agent
from edge_agent.remote_config import config_hash
from settings.edge import EdgeSettings, SystemCollector
from settings.loader import settings_from_dict


def make_agent(tmp_path: Path) -> Agent:
    table = {
        "agent": {"park": "p1", "gateway": "gw-1", "state_dir": str(tmp_path / "state")},
        "collectors": [{"type": "system", "interval_s": 5.0}],
    }
    return Agent(settings_from_dict(EdgeSettings, table), file_config=table, version="t")


def update(config: dict[str, object]) -> bytes:
    return encode(ConfigUpdate(v=1, config=config))


def test_garbage_and_invalid_documents_are_rejected_with_a_reason(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    before = agent.config_hash
    assert agent.apply_remote_config(b"not json") is False
    assert agent.config_error and "neither a JSON object" in agent.config_error
    assert agent.apply_remote_config(b'{"v":1}') is False
    assert agent.config_error and "config" in agent.config_error
    assert agent.apply_remote_config(update({"batch": {"max_readings": 0}})) is False
    assert (
        agent.config_error
        and "batch.max_readings" in agent.config_error
        and "remote config" in agent.config_error
    )
    assert agent.apply_remote_config(update({"broker": {"port": 1884}})) is False
    assert agent.config_error and "[broker]" in agent.config_error
    assert agent.config_hash == before and agent.counters.configs_rejected == 4
    assert agent.status().config_error == agent.config_error
    agent.buffer.close()


def test_valid_document_is_applied_and_reported(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    before = agent.config_hash
    doc = update({"batch": {"max_readings": 100}, "collectors": [{"type": "system", "interval_s": 1.0}]})
    assert agent.apply_remote_config(doc) is True
    (collector,) = agent.settings.collectors
    assert isinstance(collector, SystemCollector)
    assert agent.settings.batch.max_readings == 100 and collector.interval_s == 1.0
    assert agent.config_hash == config_hash(agent.settings) != before
    assert agent.config_error is None and agent.restart_requested
    status = agent.status()
    assert status.config_hash == agent.config_hash and status.config_error is None
    # The retained document comes again on every reconnect: same hash, nothing is applied again.
    assert agent.apply_remote_config(doc) is True
    assert agent.counters.configs_applied == 1
    agent.buffer.close()
