"""deploy/systemd/parkwatch.service runs what docs/deploy.md documents: ``parkwatch serve`` with
the config in /etc/parkwatch, its state (the sample config's relative paths) in the unit's own
state directory, secrets from an optional environment file; and that command accepts the sample."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys

from tests.deploy.doc_commands import REPO

UNIT = REPO / "deploy" / "systemd" / "parkwatch.service"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_unit_runs_serve_in_its_state_directory() -> None:
    svc = _service()
    argv = shlex.split(svc["ExecStart"])
    assert argv == ["/usr/local/bin/parkwatch", "serve", "--config", "/etc/parkwatch/parkwatch.toml"]
    assert svc["WorkingDirectory"] == f"/var/lib/{svc['StateDirectory']}"
    assert svc["EnvironmentFile"] == "-/etc/parkwatch/parkwatch.env"
    assert svc["KillSignal"] == "SIGTERM" and svc["Restart"] == "always"
    assert (
        "parkwatch serve --config /etc/parkwatch/parkwatch.toml" in (REPO / "docs" / "deploy.md").read_text()
    )


def test_the_units_command_accepts_the_sample_config() -> None:
    argv = shlex.split(_service()["ExecStart"])[1:]
    argv[argv.index("--config") + 1] = str(REPO / "config" / "parkwatch.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    env["PARKWATCH_BROKER__PASSWORD"] = "from-the-env-file-0123456789"
    done = subprocess.run(
        [sys.executable, "-m", "parkwatch", *argv, "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"password": "***"' in done.stdout
