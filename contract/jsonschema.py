"""Generate the JSON Schema of contract version 1 from the msgspec models.

``python -m contract.jsonschema`` rewrites ``contract/schema/parkwatch-v1.schema.json``; a test
checks that the checked-in file matches the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgspec

from contract.messages import Batch, Command, ConfigUpdate, Confirm, Status

SCHEMA_PATH: Final = Path(__file__).parent / "schema" / "parkwatch-v1.schema.json"


def contract_schema() -> dict[str, Any]:
    """One JSON Schema document whose ``$defs`` hold every message of contract v1."""
    (batch, status, config, command, confirm), defs = msgspec.json.schema_components(
        (Batch, Status, ConfigUpdate, Command, Confirm), ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://parkwatch.dev/schema/parkwatch-v1.schema.json",
        "title": "parkwatch wire contract v1",
        "description": (
            "Messages on parkwatch MQTT topics. up/telemetry carries a Batch, up/status a Status, "
            "down/config a ConfigUpdate, down/command a Command, down/confirm a Confirm. "
            "See docs/wire-contract.md."
        ),
        "oneOf": [batch, status, config, command, confirm],
        "$defs": defs,
    }


def render() -> str:
    return json.dumps(contract_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
