"""Generated broker passwords can follow `--password` on a command line."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from api import mosquitto


def test_a_password_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: Iterator[str] = iter(["-starts-like-an-option", "--also", "fine-Password_123"])
    monkeypatch.setattr("api.mosquitto.secrets.token_urlsafe", lambda _n: next(drawn))
    password = mosquitto.new_password()
    assert password == "fine-Password_123"
    parser = argparse.ArgumentParser()
    parser.add_argument("--password")
    assert parser.parse_args(["--password", password]).password == password


def test_passwords_are_long_and_distinct() -> None:
    passwords = {mosquitto.new_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 32 and not p.startswith("-") for p in passwords)
