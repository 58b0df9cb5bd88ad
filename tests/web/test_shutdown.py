"""A dashboard left open keeps its live stream (Server-Sent Events) connected; stopping the API
must not wait for it: uvicorn's graceful shutdown is bounded (``timeout_graceful_shutdown``)."""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import serve

pytestmark = pytest.mark.integration


def test_sigterm_with_an_open_live_stream_stops_within_seconds(web_store: Path, tmp_path: Path) -> None:
    proc = serve(tmp_path, web_store, extra='tile_url = "none"')
    try:
        base = proc.wait_for_line(r"listening on (http://\S+) ").group(1)
        url = urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        conn.request(
            "GET",
            "/api/v1/stream?interval_s=0.5&max_events=3600",
            headers={"X-API-Key": "web-test-admin-key"},
        )
        resp = conn.getresponse()
        assert resp.status == 200
        first = b""
        while not first.startswith(b"data:"):  # a comment line opens the stream, then the events flow
            first = resp.readline()
            assert first, "the stream ended before its first event"
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        try:
            proc.proc.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the API still ran 20 s after SIGTERM with a live stream open: {proc.text()[-2000:]}"
            )
        assert time.monotonic() - started < 15
        assert proc.proc.returncode in (0, -signal.SIGTERM), proc.text()[-2000:]
        conn.close()
    finally:
        proc.stop()
