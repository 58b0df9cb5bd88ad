"""Device models: pure, seeded state machines stepped in simulated time (no sockets)."""
