from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from settings import BrokerSettings, ConfigError, load_settings


class Demo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    broker: BrokerSettings = BrokerSettings()
    name: str = "x"
    ratios: list[float] = []


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "from-file"\n[broker]\nhost = "mqtt.example"\nport = 8883\n')
    s = load_settings(
        Demo, f, env={"PARKWATCH_BROKER__PORT": "1884", "PARKWATCH_RATIOS": "[0.5, 2]", "OTHER": "1"}
    )
    assert (s.name, s.broker.host, s.broker.port, s.ratios) == ("from-file", "mqtt.example", 1884, [0.5, 2.0])


def test_config_path_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "via-env"\n')
    assert load_settings(Demo, env={"PARKWATCH_CONFIG": str(f)}).name == "via-env"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[broker]\nport = 70000\n", {}, "broker.port: Expected `int` <= 65535"),
        ("[broker]\nhots = 'x'\n", {}, "unknown field `hots`"),
        ("[broker]\nprotocol = '4'\n", {}, "broker.protocol"),
        ("", {"PARKWATCH_BROKER__KEEPALIVE_S": "abc"}, "broker.keepalive_s"),
        ("[broker]\npassword = 'change-me'\n", {}, "broker.password is a placeholder"),
        ("name = [", {}, "not valid TOML"),
    ],
)
def test_errors_name_the_key_and_the_file(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(Demo, f, env=env)
    assert message in str(info.value)
    assert str(f) in str(info.value)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(Demo, tmp_path / "nope.toml", env={})
