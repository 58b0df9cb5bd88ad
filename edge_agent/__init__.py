"""The edge agent that runs on park gateways. Imports nothing from the server side."""
