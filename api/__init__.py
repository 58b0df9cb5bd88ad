"""The HTTP API and built-in web dashboard (reads storage; never imports the ingester)."""
