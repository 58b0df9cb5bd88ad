"""The firmware simulator: PLCs, meters, modems, probe targets and a radio environment."""
