"""Grafana dashboards for parkwatch, generated as code and checked in as JSON.

- :mod:`dashboards.panels`: pure builders of the Grafana JSON model (panels, targets, variables);
- :mod:`dashboards.influxql`: InfluxQL fragments (filters, signal-class thresholds) over the
  layout of :mod:`storage.schema`;
- :mod:`dashboards.park_operations`, :mod:`dashboards.coverage`, :mod:`dashboards.gateway_fleet`:
  one module per dashboard, each with ``build() -> dict``;
- :mod:`dashboards.build`: the registry of dashboards and ``python -m dashboards.build``, which
  writes ``dashboards/json/*.json`` or checks that they are in sync.

``dashboards/provisioning/`` holds Grafana's provisioning files (datasource and dashboard
provider), mounted by ``docker-compose.yml``.
"""
