"""``parkwatch api``: help, config errors, key management and broker files from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.auth import key_hash
from api.mosquitto import verify_password
from api.registry import Registry
from parkwatch.cli import main


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkwatch", "api", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_actions() -> None:
    out = run("--help").stdout
    for word in ("--config", "key-create", "key-hash", "mosquitto-files"):
        assert word in out


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "api.toml"
    cfg.write_text("[coverage]\nmin_samples = 0\n")
    res = run("--config", str(cfg), "--check")
    assert res.returncode == 2 and "coverage.min_samples" in res.stderr


def test_missing_duckdb_file_says_what_to_do(tmp_path: Path) -> None:
    cfg = tmp_path / "api.toml"
    cfg.write_text(f'[backend]\ntype = "duckdb"\npath = "{tmp_path / "none.duckdb"}"\n')
    res = run("--config", str(cfg), "--check")
    assert res.returncode == 2 and "The ingester creates it" in res.stderr


def test_key_create_hash_and_mosquitto_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "api.toml"
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "reg.sqlite"}"\n[provisioning]\ntopic_root = "acme/parkwatch"\n'
    )
    assert (
        main(["api", "--config", str(cfg), "key-create", "--name", "ops", "--role", "admin", "--park", "p1"])
        == 0
    )
    key = capsys.readouterr().out.strip()
    reg = Registry(tmp_path / "reg.sqlite")
    [rec] = reg.api_keys()
    assert rec.sha256 == key_hash(key) and rec.role == "admin" and rec.parks == ("p1",)
    assert run("key-hash", stdin=key + "\n").stdout.strip() == key_hash(key)
    reg.add_gateway(
        park="p1", gw="gw-1", description="", username="p1/gw-1", password_hash="$7$101$c2FsdA==$aGFzaA=="
    )
    reg.close()
    out = tmp_path / "broker"
    assert main(["api", "--config", str(cfg), "mosquitto-files", "--out-dir", str(out)]) == 0
    assert (out / "passwd").read_text() == "p1/gw-1:$7$101$c2FsdA==$aGFzaA==\n"
    assert (out / "passwd").stat().st_mode & 0o077 == 0
    acl = (out / "acl").read_text()
    assert (
        "user p1/gw-1\ntopic write acme/parkwatch/v1/p1/gw-1/up/#\ntopic read acme/parkwatch/v1/p1/gw-1/down/#"
        in acl
    )
    assert not verify_password("anything", "$7$101$c2FsdA==$aGFzaA==")


def test_alarm_rule_on_a_non_numeric_field_is_a_config_error(tmp_path: Path) -> None:
    import duckdb

    store = tmp_path / "s.duckdb"
    duckdb.connect(str(store)).close()
    cfg = tmp_path / "api.toml"
    cfg.write_text(
        f'[api]\nregistry_path = "{tmp_path / "r.sqlite"}"\n[backend]\ntype = "duckdb"\npath = "{store}"\n'
        '[[alarms.rules]]\nid = "bad"\nkind = "machine"\nfield = "state"\nop = ">"\nthreshold = 1\n'
    )
    res = run("--config", str(cfg), "--check")
    assert res.returncode == 2 and "alarms.rules[0] (bad)" in res.stderr


def _console(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    import shutil

    exe = shutil.which("parkwatch")
    assert exe is not None, "the parkwatch console script is not installed"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_key_hash_of_nothing_is_an_error() -> None:
    res = _console("api", "key-hash", stdin="\n")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        'parkwatch api key-hash: no key on stdin; pipe one in: echo "$KEY" | parkwatch api key-hash'
    ]


def test_config_after_the_action_and_a_private_registry(tmp_path: Path) -> None:
    import stat

    registry = tmp_path / "reg" / "registry.sqlite"
    cfg = tmp_path / "api.toml"
    cfg.write_text(f'[api]\nregistry_path = "{registry}"\n')
    res = _console("api", "key-create", "--config", str(cfg), "--name", "ops", "--role", "admin")
    assert res.returncode == 0, res.stderr
    assert f"in {registry} (mode 0600)" in res.stderr
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    reg = Registry(registry)
    try:
        assert [k.name for k in reg.api_keys()] == ["ops"]
    finally:
        reg.close()


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("key-create", ["Create an API key", "(default: viewer)", "--config FILE"]),
        ("key-hash", ["Print the SHA-256 of a key read from stdin"]),
        ("mosquitto-files", ["Write Mosquitto's password file", "--config FILE"]),
    ],
)
def test_actions_have_descriptions_and_defaults(action: str, words: list[str]) -> None:
    out = _console("api", action, "--help").stdout
    for word in words:
        assert word in out, out
