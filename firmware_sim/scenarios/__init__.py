"""Scenario files shipped with the package (read with ``firmware_sim.scenario.load_scenario``)."""
