"""Pure analytics over arrays: signal classes, H3 coverage grid, dead zones, OEE, energy, alarms."""
