"""Long-running ``parkwatch`` processes for end-to-end tests: start, wait for a log line, stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class Process:
    """One child process whose output goes to a file in ``workdir``."""

    def __init__(
        self,
        argv: list[str],
        *,
        workdir: Path,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = workdir / f"{name}.out"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=dict(os.environ if env is None else env),
                cwd=cwd or workdir,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        """The first match of ``pattern`` in the output; fails when the process ends first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = rx.search(self.text())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(
            f"{self.name} did not print {pattern!r} within {timeout_s:g} s: {self.text()[-3000:]}"
        )

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL when it lingers).

        A server that finished its shutdown and then re-raised SIGTERM (uvicorn does, so that
        its parent sees how it ended) counts as 0.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = int(self.proc.returncode)
        return 0 if code == -signal.SIGTERM else code


def parkwatch(*args: str) -> list[str]:
    """The argv of ``parkwatch ARGS`` with this interpreter (and so this checkout on the path)."""
    return [sys.executable, "-m", "parkwatch", *args]


def http_get(url: str, *, key: str = "", follow: bool = True) -> tuple[int, str, dict[str, str]]:
    """``(status, body, headers)`` of a GET; a redirect is returned as such unless ``follow``."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_a: Any, **_k: Any) -> None:
            return None

    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect())
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.read().decode(errors="replace"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def wait_until(pred: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``pred`` once a second until it returns something true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; last: {last!r}")
