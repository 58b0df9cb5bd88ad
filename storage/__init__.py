"""Storage layout and clients shared by the ingester (writes) and the API (reads)."""
