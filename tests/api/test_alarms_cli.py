"""``parkwatch alarms``: rules CRUD and alarm actions on a registry file, through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from analytics.alarm_lifecycle import raise_alarm
from storage.alarm_store import AlarmStore


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("parkwatch")
    assert exe is not None
    return subprocess.run([exe, "alarms", *argv], capture_output=True, text=True, timeout=60, check=False)


def test_rules_crud(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry.sqlite")
    r = run("rules", "add", "hot", "--registry", reg, "--kind", "machine", "--field", "spindle_temp_c",
            "--threshold", "72", "--deadband", "2", "--priority", "high")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["deadband"] == 2.0
    dup = run("rules", "add", "hot", "--registry", reg, "--kind", "machine", "--field", "spindle_temp_c")
    assert dup.returncode == 2 and "rules set hot" in dup.stderr
    bad = run("rules", "add", "bad", "--registry", reg, "--kind", "machine", "--field", "state")
    assert bad.returncode == 2 and "numeric field" in bad.stderr
    assert run("rules", "set", "hot", "--registry", reg, "--threshold", "75").returncode == 0
    assert run("rules", "disable", "hot", "--registry", reg).returncode == 0
    (line,) = run("rules", "list", "--registry", reg).stdout.splitlines()
    rule = json.loads(line)
    assert (rule["threshold"], rule["deadband"], rule["enabled"]) == (75.0, 2.0, False)
    assert run("rules", "delete", "hot", "--registry", reg).returncode == 0
    assert run("rules", "list", "--registry", reg).stdout == ""
    missing = run("rules", "list")
    assert missing.returncode == 2 and "--config" in missing.stderr


def test_ack_shelve_unshelve(tmp_path: Path) -> None:
    reg = tmp_path / "registry.sqlite"
    store = AlarmStore(reg)
    inst = raise_alarm(rule_id="r", park="p1", source="gw-1/cnc-01", priority="high", message="m", at_ms=1)
    aid = store.insert_alarm(inst, 1)
    store.close()
    r = run("ack", str(aid), "--registry", str(reg), "--by", "anna", "--comment", "seen")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "active_acknowledged"
    again = run("ack", str(aid), "--registry", str(reg))
    assert again.returncode == 2 and "acknowledged already by anna" in again.stderr
    r = run("shelve", str(aid), "--registry", str(reg), "--minutes", "10", "--reason", "valve swap")
    assert json.loads(r.stdout)["state"] == "shelved"
    r = run("unshelve", str(aid), "--registry", str(reg))
    assert json.loads(r.stdout)["state"] == "active_acknowledged"
    (line,) = run("list", "--registry", str(reg), "--state", "open").stdout.splitlines()
    assert json.loads(line)["id"] == aid
    assert run("ack", "999", "--registry", str(reg)).returncode == 2
