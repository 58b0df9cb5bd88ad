"""The ingester: MQTT batches in, validated and enriched points out to a storage sink."""
