"""The edge agent imports nothing from the server side."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_MODULES = (
    "ingest",
    "api",
    "storage",
    "analytics",
    "firmware_sim",
    "fastapi",
    "duckdb",
    "numpy",
    "h3",
    "pyarrow",
    "uvicorn",
    "amqtt",
    "httpx",
)

CODE = """
import json, sys, importlib
for name in ["edge_agent.cli", "edge_agent.main", "edge_agent.agent", "edge_agent.doctor", "edge_agent.init_config",
             "edge_agent.collectors.modbus", "edge_agent.collectors.cellular", "edge_agent.collectors.broadband",
             "edge_agent.collectors.wifi", "edge_agent.collectors.system", "edge_agent.remote_config",
             "mqttlink", "settings.edge"]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_edge_agent_imports_no_server_module() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=60)
    loaded = json.loads(out.stdout)
    offending = [m for m in loaded if m.split(".")[0] in SERVER_MODULES]
    assert offending == []
    assert "edge_agent.agent" in loaded and "paho.mqtt.client" in loaded
