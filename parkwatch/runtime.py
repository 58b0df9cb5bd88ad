"""Re-export of :mod:`settings.runtime`, where the process set-up helpers live."""

from settings.runtime import (
    CHATTY_LIBRARIES,
    SERVER_GC_THRESHOLD,
    JsonFormatter,
    setup_logging,
    tune_gc_for_server,
)

__all__ = ["CHATTY_LIBRARIES", "SERVER_GC_THRESHOLD", "JsonFormatter", "setup_logging", "tune_gc_for_server"]
