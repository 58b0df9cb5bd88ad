"""The firmware simulator: PLCs, meters, modems, probe targets and a radio environment.

Where things are:

* ``scenario.py`` - scenario files (TOML, msgspec-validated); ``scenarios/haiphong.toml`` the default.
* ``models/`` - pure seeded device models (machine, energy meter, environment sensor).
* ``radio/`` - bands, propagation (path loss, antenna, shadowing), the radio environment.
* ``world.py`` - every gateway's models, positions and radio links at a simulated time.
* ``registers.py`` - the Modbus register maps; ``devices/`` - Modbus, AT-modem and probe servers.
* ``runner.py`` - starts the devices; ``endpoints.py`` - what they expose (``SimEndpoints``).
* ``truth.py`` - ground truth (classes per H3 cell, dead zones, scoring); ``render.py``/``png.py`` the map.
* ``readings.py`` + ``fleet.py`` - fleet mode (contract batches over MQTT).
* ``cli.py`` / ``run_cli.py`` - ``parkwatch sim``.
"""
