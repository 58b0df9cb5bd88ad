"""What every deployable's ``main`` applies before it starts: the version, logging set-up, GC tuning.

Standard library only and importing nothing of parkwatch, so that every package (the edge agent
included) can use it without importing the ``parkwatch`` entry package.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

__version__: Final = "0.1.0"
"""The parkwatch release (the same as ``version`` in pyproject.toml)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and any ``extra`` fields."""

    _skip = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in self._skip})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger for a service (``fmt``: ``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO: with InfluxDB behind them, that is nearly every line an
    # ingester or API writes. Their warnings still show; DEBUG shows everything.
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)


CHATTY_LIBRARIES: Final = ("httpx", "httpcore", "asyncua")
"""Loggers held at WARNING unless the level is DEBUG (asyncua logs every OPC UA publish at INFO)."""


SERVER_GC_THRESHOLD = (50_000, 20, 100)
"""Collector thresholds of the server processes (CPython's default is ``(700, 10, 10)``)."""


def tune_gc_for_server() -> None:
    """Move the objects of start-up out of the collector's way and collect less often.

    An API answer builds tens of thousands of short-lived containers (GeoJSON features); with
    the default thresholds they trigger hundreds of young collections per answer and now and
    then a full one that walks every object the process holds (modules, caches), a pause of
    tens of milliseconds in the slowest answers. ``gc.freeze()`` keeps the objects that exist
    after start-up out of every later collection; the higher first threshold collects young
    objects about 70 times less often. Reference counting still frees nearly everything at
    once; the collector only breaks cycles.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLD)


GRACEFUL_SHUTDOWN_S: Final = 5
"""Seconds the HTTP server waits for open requests when it stops: a dashboard left open keeps its
live stream (Server-Sent Events) connected, which would otherwise hold the shutdown forever."""
