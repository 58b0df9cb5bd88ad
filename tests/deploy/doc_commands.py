"""Run the shell blocks of a document as a reader would type them, in a temporary root.

A block marked ``<!-- run: NAME -->`` belongs to the scenario NAME and runs to its end in one
shell; ``<!-- run: NAME (background) -->`` is a long-running command started in a shell of its
own (a server, an agent). The shells share what a reader's shell would keep between blocks:
the working directory and the exported variables (every assignment is exported).

The commands change only as little as a test machine needs: ``sudo`` is dropped, the absolute
paths of the document (``/etc/parkwatch``, ``/var/lib/parkwatch``) move under the temp root and
the well-known ports become free ones — in the commands and in the config files the commands copy
or write under the root. ``parkwatch`` is this checkout's.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_BLOCK_RE = re.compile(r"<!-- run: ([\w-]+)( \(background\))? -->\n```sh\n(.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    scenario: str
    background: bool
    text: str


def doc_blocks(doc: Path, scenario: str) -> list[Block]:
    """The marked blocks of ``scenario`` in ``doc``, in order."""
    return [
        Block(scenario=m.group(1), background=bool(m.group(2)), text=m.group(3))
        for m in _BLOCK_RE.finditer(doc.read_text())
        if m.group(1) == scenario
    ]


@dataclass
class Background:
    block: Block
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait; return the exit code (a re-raised SIGTERM after a clean stop counts as 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = int(self.proc.returncode)
        return 0 if code == -signal.SIGTERM else code


@dataclass
class DocShell:
    """The reader's shell: working directory, environment, substitutions, background processes."""

    root: Path
    ports: Mapping[int, int]
    """Documented port -> the free port used instead."""
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    background: list[Background] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    _rewritten: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        shim = bin_dir / "parkwatch"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m parkwatch "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.env = env
        subs = {
            "/etc/parkwatch": f"{self.root}/etc/parkwatch",
            "/var/lib/parkwatch": f"{self.root}/var/lib/parkwatch",
            "sudo ": "",
            # Mosquitto started as root drops to `user`; the temp root is private to its owner.
            "user mosquitto": "user root" if os.geteuid() == 0 else "",
            "chown -R mosquitto:": 'chown -R "$(id -un)":',
            **{str(k): str(v) for k, v in self.ports.items()},
        }
        self._subs = subs
        self._sub_re = re.compile("|".join(re.escape(k) for k in sorted(subs, key=len, reverse=True)))

    def adapt(self, text: str) -> str:
        """``text`` with this machine's paths and ports (one pass: no substitution of a substitution)."""
        return self._sub_re.sub(lambda m: self._subs[m.group(0)], text)

    def adapt_files(self) -> None:
        """Give the config files under the root this machine's paths and ports (each file once)."""
        for path in sorted(self.root.rglob("*")):
            if path.suffix in (".toml", ".conf") and path.is_file() and path not in self._rewritten:
                text = path.read_text()
                new = self.adapt(text)
                # A listener on every interface is the deployment's; the test keeps to loopback.
                new = re.sub(r"(?m)^listener (\d+)$", r"listener \1 127.0.0.1", new)
                if new != text:
                    path.write_text(new)
                self._rewritten.add(path)

    def run(self, block: Block, on_start: Callable[[Background], None] | None = None) -> None:
        """Run ``block``: to its end in this shell, or in the background (then ``on_start`` waits)."""
        text = self.adapt(block.text)
        n = len(self.background) + len(self.outputs)
        if block.background:
            log = self.root / f"bg-{n}.out"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    ["bash", "-c", text],
                    cwd=self.cwd,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            bg = Background(block=block, proc=proc, log=log)
            self.background.append(bg)
            if on_start is not None:
                on_start(bg)
            return
        state, where = self.root / f"env-{n}", self.root / f"cwd-{n}"
        script = f"set -euo pipefail\nset -a\n{text}\nenv -0 > '{state}'\npwd > '{where}'\n"
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (
            f"block failed ({done.returncode}):\n{text}\n{done.stdout}\n{done.stderr}"
        )
        self.outputs.append(done.stdout)
        self.env = dict(item.split("=", 1) for item in state.read_text().split("\0") if "=" in item)
        self.cwd = Path(where.read_text().strip())
        self.adapt_files()

    def stop_all(self) -> dict[str, int]:
        """Stop the background processes, the last started first; their exit codes by command."""
        codes = {}
        for bg in reversed(self.background):
            codes[bg.block.text.strip()] = bg.stop()
        return codes
