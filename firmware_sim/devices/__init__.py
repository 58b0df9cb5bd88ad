"""Simulated devices on loopback: Modbus TCP servers, AT-command modems, HTTP probe targets."""
