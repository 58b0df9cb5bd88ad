"""Real Mosquitto and InfluxDB servers for integration tests, on free loopback ports in a temp dir.

Used by the fixtures in ``tests/conftest.py``; also importable by benchmarks. Each server can be
stopped and started again on the same port and data directory (outage tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


class ServerError(RuntimeError):
    """A server binary is missing or did not come up."""


class ServerProcess:
    """One server process with a fixed port and work dir that can be restarted."""

    def __init__(
        self, *, name: str, argv: list[str], port: int, workdir: Path, ready: Callable[[], bool]
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.host = "127.0.0.1"
        self.workdir = workdir
        self._ready = ready
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = workdir / f"{name}.out"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self._proc.returncode}: {self.tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not answer on port {self.port} within {timeout}s: {self.tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 5
        while tcp_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no chance to flush."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, n: int = 2000) -> str:
        try:
            return self._log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def find_binary(name: str, *extra: str) -> str | None:
    for cand in (name, *extra):
        found = shutil.which(cand) or (cand if os.path.isfile(cand) and os.access(cand, os.X_OK) else None)
        if found:
            return found
    return None


def mosquitto_server(workdir: Path, *, port: int | None = None, extra_conf: str = "") -> ServerProcess:
    """A Mosquitto 2 broker on loopback with persistence in ``workdir`` (anonymous unless
    ``extra_conf`` sets a password file and ACL)."""
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        raise ServerError("mosquitto is not installed: apt-get install mosquitto (scripts/test does it)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    anonymous = "allow_anonymous true\n" if "password_file" not in extra_conf else "allow_anonymous false\n"
    # Started as root, Mosquitto drops to the "mosquitto" user and then cannot write its
    # persistence file in our temp dir: sessions would not survive a restart.
    user = "user root\n" if os.geteuid() == 0 and "\nuser " not in f"\n{extra_conf}" else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"{anonymous}"
        f"{user}"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "autosave_interval 1\n"
        f"log_dest file {workdir}/mosquitto.log\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "message_size_limit 1048576\n"
        f"{extra_conf}\n"
    )
    return ServerProcess(
        name="mosquitto",
        argv=[binary, "-c", str(conf)],
        port=port,
        workdir=workdir,
        ready=lambda: tcp_open("127.0.0.1", port),
    )


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def influxdb_server(workdir: Path, *, port: int | None = None) -> ServerProcess:
    """An InfluxDB 1.x ``influxd`` on loopback with its data in ``workdir`` (v1 HTTP API, no auth)."""
    binary = find_binary("influxd", "/usr/bin/influxd")
    if binary is None:
        raise ServerError("influxd is not installed: apt-get install influxdb (scripts/test does it)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    rpc_port = free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        "reporting-disabled = true\n"
        f'bind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{workdir}/meta"\n  logging-enabled = false\n'
        f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n'
        "  query-log-enabled = false\n  trace-logging-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "  max-body-size = 0\n"
        "[monitor]\n  store-enabled = false\n"
        "[subscriber]\n  enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
    )
    return ServerProcess(
        name="influxd",
        argv=[binary, "-config", str(conf)],
        port=port,
        workdir=workdir,
        ready=lambda: _http_ok(f"http://127.0.0.1:{port}/ping"),
    )
