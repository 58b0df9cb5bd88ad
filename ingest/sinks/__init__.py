"""Storage sinks of the ingester, registered by name (see :mod:`ingest.sinks.base`)."""
