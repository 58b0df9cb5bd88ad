"""Every validator of ids, keys and names refuses control characters anywhere (also at the end) and
accepts the valid values: the shared helper, Python ``re.search`` as msgspec runs the patterns,
the contract's decoders, the generated JSON Schema, topics, and the settings loader.

(The API's query, path and body parameters: ``tests/api/test_id_params.py``.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import PayloadError, TopicError, check_id, decode_batch, decode_message, parse_topic, topic_for
from contract.ids import (
    BAND,
    BSSID,
    FIELD_NAME,
    ID,
    KEY_NAME,
    NAME,
    SHA256_HEX,
    TAG_KEY,
    Syntax,
    full_match,
    is_valid_id,
)
from contract.jsonschema import SCHEMA_PATH
from contract.messages import Status
from settings.api import ApiSettings
from settings.edge import EdgeSettings
from settings.errors import ConfigError
from settings.loader import load_settings, settings_from_dict
from tests.contract.id_strategies import corrupted, valid

SYNTAXES: dict[str, Syntax] = {
    "id": ID,
    "tag key": TAG_KEY,
    "field name": FIELD_NAME,
    "name": NAME,
    "key name": KEY_NAME,
    "band": BAND,
    "bssid": BSSID,
    "sha256": SHA256_HEX,
}
NOW_MS = 1_800_000_000_000


def test_full_match_is_exact_in_python_re_and_keeps_its_meaning() -> None:
    pattern = full_match(r"[a-z]{1,3}")
    assert re.search(pattern, "abc")
    for text in ("abc\n", "ab\nc", "\nabc", "abcd", ""):
        assert re.search(pattern, text) is None, text
    # The old way: ``$`` matches before a final newline.
    assert re.search(r"^[a-z]{1,3}$", "abc\n")


def test_check_id_names_the_rule() -> None:
    with pytest.raises(TopicError, match=r"invalid gateway id 'gw-1\\n': use 1-64 characters"):
        check_id("gw-1\n", "gateway")


@pytest.mark.parametrize("name", sorted(SYNTAXES))
@settings(max_examples=60)
@given(data=st.data())
def test_helper_and_msgspec_pattern_refuse_control_characters(name: str, data: st.DataObject) -> None:
    syntax = SYNTAXES[name]
    good = data.draw(valid(syntax))
    bad = data.draw(corrupted(syntax))
    constrained: Any = Annotated[str, msgspec.Meta(pattern=syntax.pattern, max_length=syntax.max_length)]
    assert syntax.is_valid(good)
    assert msgspec.convert(good, constrained) == good
    assert not syntax.is_valid(bad)
    assert re.search(syntax.pattern, bad) is None  # how msgspec and python-jsonschema apply it
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(bad, constrained)


def _batch(gw: str = "gw-1", **reading: Any) -> bytes:
    r = {"kind": "generic", "ts": NOW_MS - 1000, "dev": "probe-1", "f": {"level_m": 1.0}, **reading}
    return json.dumps({"v": 1, "gw": gw, "seq": 1, "readings": [r]}).encode()


@settings(max_examples=150)
@given(
    where=st.sampled_from(["dev", "tag key", "field name", "band", "bssid"]),
    data=st.data(),
)
def test_decoder_dead_letters_a_reading_with_a_bad_id_or_key(where: str, data: st.DataObject) -> None:
    if where == "dev":
        payload = _batch(dev=data.draw(corrupted(ID)))
    elif where == "tag key":
        payload = _batch(tags={data.draw(corrupted(TAG_KEY)): "smuggled_meas"})
    elif where == "field name":
        payload = _batch(f={data.draw(corrupted(FIELD_NAME)): 1.0})
    elif where == "band":
        payload = _batch(kind="cellular", operator="Sao Bien", tech="LTE", band=data.draw(corrupted(BAND)))
    else:
        payload = _batch(kind="wifi", bssid=data.draw(corrupted(BSSID)))
    if where in ("band", "bssid"):
        payload = payload.replace(b'"f": {"level_m": 1.0}, ', b"")
    decoded = decode_batch(payload, now_ms=NOW_MS)
    assert len(decoded.rejected) == 1
    assert decoded.rejected[0].index == 0
    if where in ("band", "bssid"):  # optional measurements: dropped, the reading kept
        assert decoded.rejected[0].dropped
        assert decoded.rejected[0].key == f"malformed:{where}"
        assert getattr(decoded.readings[0], where) is None
    else:
        assert decoded.readings == []


@settings(max_examples=100)
@given(
    # ``x_`` keeps a generated key clear of the reserved keys and the kind's field names.
    tag_key=valid(TAG_KEY).filter(lambda k: len(k) <= 30).map(lambda k: f"x_{k}"),
    field=valid(FIELD_NAME),
    dev=valid(ID),
    band=valid(BAND),
)
def test_decoder_accepts_valid_ids_and_keys(tag_key: str, field: str, dev: str, band: str) -> None:
    decoded = decode_batch(_batch(dev=dev, f={field: 1.0}, tags={tag_key: "x"}), now_ms=NOW_MS)
    assert decoded.rejected == []
    assert len(decoded.readings) == 1
    cell = {"kind": "cellular", "operator": "Sao Bien", "tech": "LTE", "band": band}
    payload = _batch(**cell).replace(b'"f": {"level_m": 1.0}, ', b"")
    assert len(decode_batch(payload, now_ms=NOW_MS).readings) == 1


@settings(max_examples=60)
@given(gw=corrupted(ID))
def test_envelope_with_a_bad_gateway_id_is_refused_whole(gw: str) -> None:
    with pytest.raises(PayloadError):
        decode_batch(_batch(gw=gw), now_ms=NOW_MS)
    with pytest.raises(PayloadError):
        decode_message(json.dumps({"v": 1, "gw": gw, "state": "online"}).encode(), Status)


@settings(max_examples=60)
@given(gw=corrupted(ID), park=valid(ID))
def test_topics_refuse_bad_ids(gw: str, park: str) -> None:
    assert not is_valid_id(gw)
    with pytest.raises(TopicError):
        topic_for(park, gw, "telemetry")
    with pytest.raises(TopicError):
        parse_topic(f"parkwatch/v1/{park}/{gw}/up/telemetry")
    assert parse_topic(f"parkwatch/v1/{park}/gw-1/up/telemetry").park == park


_SCHEMA = json.loads(SCHEMA_PATH.read_text())


@settings(max_examples=60)
@given(gw=corrupted(ID), key=corrupted(TAG_KEY), dev=corrupted(ID))
def test_generated_json_schema_refuses_bad_ids(gw: str, key: str, dev: str) -> None:
    # python-jsonschema applies ``pattern`` with re.search, like msgspec: the same trap as ``$``.
    validator = jsonschema.Draft202012Validator(_SCHEMA)
    assert validator.is_valid(json.loads(_batch()))
    assert not validator.is_valid(json.loads(_batch(gw=gw)))
    assert not validator.is_valid(json.loads(_batch(tags={key: "v"})))
    assert not validator.is_valid(json.loads(_batch(dev=dev)))


def _edge_toml(path: Path, park: str, gateway: str, device: str, field: str) -> Path:
    path.write_text(
        f"[agent]\npark = {json.dumps(park)}\ngateway = {json.dumps(gateway)}\n"
        '[[collectors]]\ntype = "modbus"\n[[collectors.devices]]\n'
        f'id = {json.dumps(device)}\nhost = "127.0.0.1"\nkind = "generic"\nprofile = "custom"\n'
        f"[[collectors.devices.registers]]\nfield = {json.dumps(field)}\naddress = 0\n",
        encoding="utf-8",
    )
    return path


@settings(max_examples=40, deadline=None)
@given(
    where=st.sampled_from(["park", "gateway", "device", "field", "env gateway"]),
    data=st.data(),
)
def test_edge_settings_loader_refuses_bad_ids(where: str, data: st.DataObject, tmp_path_factory: Any) -> None:
    tmp = tmp_path_factory.mktemp("edge")
    ok = {"park": "hp-a", "gateway": "gw-1", "device": "cnc-1", "field": "level_m"}
    assert load_settings(EdgeSettings, _edge_toml(tmp / "ok.toml", **ok), env={}).agent.gateway == "gw-1"
    env: dict[str, str] = {}
    bad = dict(ok)
    if where == "env gateway":
        env["PARKWATCH_AGENT__GATEWAY"] = data.draw(corrupted(ID))
    else:
        bad[where] = data.draw(corrupted(FIELD_NAME if where == "field" else ID))
    with pytest.raises(ConfigError, match="regex"):
        load_settings(EdgeSettings, _edge_toml(tmp / "bad.toml", **bad), env=env)


@settings(max_examples=40, deadline=None)
@given(
    where=st.sampled_from(
        ["park id", "key park", "key name", "sha256", "rule field", "rule park", "ingest user"]
    ),
    data=st.data(),
)
def test_api_settings_loader_refuses_bad_ids(where: str, data: st.DataObject) -> None:
    good: dict[str, Any] = {
        "parks": [{"id": "p1", "name": "P", "boundary": [[0, 0], [1, 0], [1, 1]]}],
        "keys": [{"name": "ops team", "sha256": "a" * 64, "parks": ["p1"]}],
        "alarms": {
            "rules": [{"id": "r1", "kind": "machine", "field": "spindle_temp_c", "op": ">", "threshold": 1.0}]
        },
        "provisioning": {"ingest_username": "parkwatch-ingest"},
    }
    cases: dict[str, tuple[Any, ...]] = {
        "park id": ("parks", 0, "id", ID),
        "key park": ("keys", 0, "parks", ID),
        "key name": ("keys", 0, "name", KEY_NAME),
        "sha256": ("keys", 0, "sha256", SHA256_HEX),
        "rule field": ("alarms", "rules", 0, "field", FIELD_NAME),
        "rule park": ("alarms", "rules", 0, "park", ID),
        "ingest user": ("provisioning", "ingest_username", ID),
    }
    *path, syntax = cases[where]

    assert settings_from_dict(ApiSettings, good).keys[0].name == "ops team"
    bad = json.loads(json.dumps(good))
    node: Any = bad
    for part in path[:-1]:
        node = node[part]
    value = data.draw(corrupted(syntax))
    node[path[-1]] = [value] if where == "key park" else value
    with pytest.raises(ConfigError, match="regex"):
        settings_from_dict(ApiSettings, bad)
