"""``parkwatch edge init`` in a terminal (the real console script on a pseudo-terminal): the password
is not echoed, a config holding it is written 0600 and says so, and a Modbus device is accepted as
``ID HOST:PORT KIND`` and as ``ID=HOST:PORT:KIND`` at the prompt and in the flag."""

from __future__ import annotations

import os
import pty
import select
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from edge_agent.init_config import parse_modbus
from edge_agent.main import load
from settings.edge import ModbusCollector
from settings.errors import ConfigError

PASSWORD = "s3cret-pass-42"


class Terminal:
    """A child process on a pseudo-terminal; reads everything it writes."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the console script, the pty its controlling terminal
            os.execv(argv[0], argv)
        self.seen = ""

    def expect(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; got {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed before {text!r}; got {self.seen!r}"
                self.seen += chunk.decode(errors="replace")

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def finish(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self.seen += chunk.decode(errors="replace")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_interactive_init_hides_the_password_and_writes_0600(tmp_path: Path) -> None:
    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    out = tmp_path / "edge.toml"
    term = Terminal([exe, "edge", "init", "--out", str(out), "--state-dir", str(tmp_path / "state")])
    term.expect("park id")
    term.send("hp-deep-c")
    term.expect("gateway id")
    term.send("gw-7")
    term.expect("broker host")
    term.send("")
    term.expect("broker port")
    term.send("")
    term.expect("MQTT username")
    term.send("hp-deep-c/gw-7")
    term.expect("MQTT password (not shown)")
    term.send(PASSWORD)
    term.expect("fixed position")
    term.send("")
    term.expect("add a Modbus device")
    term.send("cnc-01 127.0.0.1:502 machine")
    term.expect("add a Modbus device")
    term.send("meter-1=127.0.0.1:503:energy")
    term.expect("add a Modbus device")
    term.send("")
    assert term.finish() == 0, term.seen
    assert PASSWORD not in term.seen, term.seen
    assert "mode 0600" in term.seen and "MQTT password" in term.seen
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    settings, _ = load(str(out))
    assert settings.broker.password == PASSWORD
    modbus = next(c for c in settings.collectors if isinstance(c, ModbusCollector))
    assert [(d.id, d.port, d.profile) for d in modbus.devices] == [
        ("cnc-01", 502, "machine"),
        ("meter-1", 503, "energy"),
    ]


def test_flag_accepts_both_device_forms_and_a_passwordless_config_stays_0644(tmp_path: Path) -> None:
    out = tmp_path / "edge.toml"
    res = subprocess.run(
        [shutil.which("parkwatch") or "parkwatch", "edge", "init", "--non-interactive", "--out", str(out),
         "--park", "p1", "--gateway", "gw-1", "--state-dir", str(tmp_path / "s"),
         "--modbus", "cnc-01=127.0.0.1:502:machine", "--modbus", "env-1 127.0.0.1:504 environment"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "mode 0600" not in res.stdout and stat.S_IMODE(out.stat().st_mode) & 0o600 == 0o600
    settings, _ = load(str(out))
    modbus = next(c for c in settings.collectors if isinstance(c, ModbusCollector))
    assert [d.id for d in modbus.devices] == ["cnc-01", "env-1"]


@pytest.mark.parametrize(
    "spec", ["cnc-01", "cnc-01 127.0.0.1:502 robot", "bad id!=h:1:machine", "x=h:port:machine"]
)
def test_bad_device_specs_name_both_forms_or_the_bad_part(spec: str) -> None:
    with pytest.raises(ConfigError, match="Modbus device"):
        parse_modbus(spec)
