"""The parkwatch wire contract, version 1: topics, messages, readings, limits and codecs.

Everything that crosses MQTT goes through this package; ``docs/wire-contract.md`` documents it and
``contract/schema/parkwatch-v1.schema.json`` is its generated JSON Schema.
"""

from contract.codec import DecodedBatch, Rejected, decode_batch, decode_message, encode, sniff
from contract.errors import ContractError, PayloadError, TopicError
from contract.ids import check_id, is_valid_id
from contract.limits import CONTRACT_VERSION
from contract.messages import Batch, Command, ConfigUpdate, Confirm, Status, Uplink
from contract.readings import (
    KINDS,
    AnyReading,
    Broadband,
    Cellular,
    Energy,
    Environment,
    Generic,
    Machine,
    Reading,
    System,
    Wifi,
    kind_of,
    measurement_fields,
)
from contract.topics import Topic, parse_topic, subscription, topic_for

__all__ = [
    "CONTRACT_VERSION",
    "KINDS",
    "AnyReading",
    "Batch",
    "Broadband",
    "Cellular",
    "Command",
    "ConfigUpdate",
    "Confirm",
    "ContractError",
    "DecodedBatch",
    "Energy",
    "Environment",
    "Generic",
    "Machine",
    "PayloadError",
    "Reading",
    "Rejected",
    "Status",
    "System",
    "Topic",
    "TopicError",
    "Uplink",
    "Wifi",
    "check_id",
    "decode_batch",
    "decode_message",
    "encode",
    "is_valid_id",
    "kind_of",
    "measurement_fields",
    "parse_topic",
    "sniff",
    "subscription",
    "topic_for",
]
