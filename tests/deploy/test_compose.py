"""docker-compose.yml, .env.example, the Dockerfile and the files they mount, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from settings.api import ApiSettings, InfluxQuerySettings
from settings.ingest import InfluxSinkSettings, IngestSettings
from settings.loader import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Every loop below walks these; an empty parse would make them pass vacuously.
assert {"mosquitto", "influxdb", "api", "grafana", "broker-auth", "ingest-1", "ingest-2"} <= set(SERVICES)
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
COMPOSE_SCHEMA = ROOT / "tests" / "schemas" / "compose" / "compose-spec.json"

_REF_RE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")
SECRET_RE = re.compile(r"(PASSWORD|TOKEN|_USER|_ORG|_BUCKET|PUBLIC_HOST)$")
INGESTERS = ("ingest-1", "ingest-2")
ONE_SHOT_JOBS = ("broker-auth", "grafana-api-key")


def _env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _references() -> dict[str, set[str]]:
    """Variable name → the modifiers it is referenced with (``:?msg``, ``:-default``, or '')."""
    refs: dict[str, set[str]] = {}
    for m in _REF_RE.finditer(COMPOSE_TEXT):
        refs.setdefault(m.group(1), set()).add(m.group(2) or "")
    return refs


def _substitute(m: re.Match[str]) -> str:
    modifier = m.group(2) or ""
    if modifier.startswith(":-"):
        return modifier[2:]
    return "parkwatch" if "BUCKET" in m.group(1) else f"fake-{m.group(1).lower()}-value"


def _fake_env(service: str) -> dict[str, str]:
    """The service's environment as compose would set it: defaults, and made-up required values."""
    return {
        key: _REF_RE.sub(_substitute, str(value))
        for key, value in (SERVICES[service].get("environment") or {}).items()
    }


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert "draft-07" in schema["$schema"]
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_every_variable_is_documented_in_env_example_and_every_entry_is_used() -> None:
    documented = _env_example()
    refs = _references()
    assert refs, "docker-compose.yml takes nothing from .env?"
    assert set(refs) - set(documented) == set(), "referenced but not in .env.example"
    assert set(documented) - set(refs) == set(), "in .env.example but never used"


def test_secrets_have_no_working_defaults() -> None:
    secrets = [name for name in _references() if SECRET_RE.search(name)]
    assert len(secrets) >= 3, f"too few secrets found in docker-compose.yml: {secrets}"
    for name, modifiers in _references().items():
        if SECRET_RE.search(name):
            assert all(m.startswith(":?") for m in modifiers), f"{name} must be required (${{{name}:?...}})"
            assert _env_example()[name] == "", f".env.example must leave {name} empty"
    for name, modifiers in _references().items():
        assert all(m == "" or m.startswith((":?", ":-")) for m in modifiers), name


def test_no_literal_secrets_in_the_compose_file() -> None:
    checked = 0
    for service in SERVICES.values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert str(value).startswith("${"), f"{key} must come from .env"
                checked += 1
    assert checked > 0, "no secret-named variable found in any service's environment"


def test_long_running_services_have_healthchecks() -> None:
    assert len(SERVICES) >= 5
    for name, service in SERVICES.items():
        if name in ONE_SHOT_JOBS:
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name


def test_two_ingesters_share_a_subscription_with_their_own_sessions() -> None:
    client_ids = set()
    accounts = _fake_env("broker-auth")["MQTT_INGEST_ACCOUNTS"].split()
    for name in INGESTERS:
        env = _fake_env(name)
        settings = load_settings(IngestSettings, ROOT / "deploy" / "parkwatch" / "ingest.toml", env=env)
        # The broker replaces client ids with usernames: each ingester's id is its own account.
        assert settings.client_id == settings.broker.username
        assert settings.broker.username in accounts, "broker-auth must register every ingester's account"
        client_ids.add(settings.client_id)
        assert settings.ingest.share_group == "ingest"
        assert settings.broker.protocol == "5"
        assert isinstance(settings.sink, InfluxSinkSettings)
        assert settings.sink.database == "parkwatch"
        assert not settings.sink.create_database
        deps = SERVICES[name]["depends_on"]
        assert deps["influxdb"]["condition"] == deps["mosquitto"]["condition"] == "service_healthy"
        spool = [v for v in SERVICES[name]["volumes"] if v.endswith(":/var/lib/parkwatch/spool")]
        assert len(spool) == 1, "each ingester needs its own spool volume"
    assert len(client_ids) == len(INGESTERS)
    # The healthcheck's login (the base account) is nobody's session.
    api = tomllib.loads((ROOT / "deploy" / "parkwatch" / "api.toml").read_text())
    assert api["provisioning"]["ingest_username"] not in client_ids
    spools = {v for n in INGESTERS for v in SERVICES[n]["volumes"] if "spool" in v}
    assert len(spools) == len(INGESTERS)


def test_api_config_loads_with_the_compose_environment() -> None:
    settings = load_settings(ApiSettings, ROOT / "deploy" / "parkwatch" / "api.toml", env=_fake_env("api"))
    assert isinstance(settings.backend, InfluxQuerySettings)
    assert settings.backend.url == "http://influxdb:8086"
    assert settings.api.host == "0.0.0.0"
    assert settings.api.registry_path.startswith("/var/lib/parkwatch/")
    registry_mounts = [v for v in SERVICES["api"]["volumes"] if v.startswith("registry:")]
    assert registry_mounts == ["registry:/var/lib/parkwatch"]
    assert "registry:/var/lib/parkwatch" in SERVICES["broker-auth"]["volumes"]


def test_broker_accounts_agree_between_api_ingesters_and_healthcheck() -> None:
    api = tomllib.loads((ROOT / "deploy" / "parkwatch" / "api.toml").read_text())
    ingest = tomllib.loads((ROOT / "deploy" / "parkwatch" / "ingest.toml").read_text())
    user = api["provisioning"]["ingest_username"]
    assert ingest["broker"]["username"] == user
    assert ingest["broker"]["topic_root"] == api["provisioning"]["topic_root"]
    assert f"-u {user} " in " ".join(SERVICES["mosquitto"]["healthcheck"]["test"])


def test_bind_mounts_exist_in_the_repository() -> None:
    volumes = [(name, v) for name, service in SERVICES.items() for v in service.get("volumes", [])]
    assert any(v.startswith("./") for _, v in volumes) and any(not v.startswith("./") for _, v in volumes)
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in COMPOSE["volumes"], f"{name}: undeclared volume {source}"


def test_grafana_mounts_match_the_provisioning_files() -> None:
    grafana = SERVICES["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "dashboards" / "provisioning" / "dashboards" / "parkwatch.yaml").read_text()
    )
    assert mounts["./dashboards/json"] == provider["providers"][0]["options"]["path"]
    # Every $VARIABLE of the datasource files is set for Grafana (environment or its entrypoint).
    provided = set(grafana["environment"]) | set(
        re.findall(r"export ([A-Z0-9_]+)=", " ".join(grafana["command"]))
    )
    files = sorted((ROOT / "dashboards" / "provisioning" / "datasources").glob("*.yaml"))
    assert [f.name for f in files] == ["parkwatch-api.yaml", "parkwatch-influxdb.yaml"]
    for path in files:
        datasource = yaml.safe_load(path.read_text())
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", json.dumps(datasource["datasources"])))
        assert used and used <= provided, (path.name, used - provided)


def test_grafana_reads_the_api_with_the_infinity_plugin_and_a_viewer_key() -> None:
    grafana = SERVICES["grafana"]
    env = _fake_env("grafana")
    plugin_id = env["GF_INSTALL_PLUGINS"].split()[0]
    datasource = yaml.safe_load(
        (ROOT / "dashboards" / "provisioning" / "datasources" / "parkwatch-api.yaml").read_text()
    )
    (ds,) = datasource["datasources"]
    assert ds["type"] == plugin_id == "yesoreyeram-infinity-datasource"
    # The API service answers on the URL Grafana is given, and only there.
    assert env["PARKWATCH_API_URL"] == "http://api:8080"
    assert ds["url"] == "$PARKWATCH_API_URL" and ds["jsonData"]["allowedHosts"] == ["$PARKWATCH_API_URL"]
    assert SERVICES["api"]["healthcheck"]["test"][-1].count("127.0.0.1:8080")
    assert grafana["depends_on"]["api"]["condition"] == "service_healthy"
    # The key is sent as the API's X-API-Key header from secureJsonData (never to browsers).
    assert ds["jsonData"]["httpHeaderName1"] == "X-API-Key"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "$PARKWATCH_API_KEY"
    # ... read from the file that the one-shot job wrote with a viewer key, never from .env.
    job = SERVICES["grafana-api-key"]
    assert grafana["depends_on"]["grafana-api-key"]["condition"] == "service_completed_successfully"
    script = " ".join(job["command"])
    assert "parkwatch api key-create --name grafana --role viewer" in script
    key_dir = next(v.split(":")[1] for v in job["volumes"] if v.startswith("grafana-api-key:"))
    assert f"> {key_dir}/api-key.new" in script and f"test -s {key_dir}/api-key" in script
    assert "grafana-api-key:/run/parkwatch/grafana-api:ro" in grafana["volumes"]
    assert 'PARKWATCH_API_KEY="$$(cat /run/parkwatch/grafana-api/api-key)"' in " ".join(grafana["command"])
    assert "registry:/var/lib/parkwatch" in job["volumes"]
    assert key_dir.startswith("/var/lib/parkwatch/")
    # The job runs as the image's user: the Dockerfile creates the key directory it owns.
    assert f"{key_dir} " in (ROOT / "Dockerfile").read_text()


def test_token_files_come_from_the_influxdb_init_script() -> None:
    script = ROOT / "deploy" / "influxdb" / "init" / "10-parkwatch.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    influx_mounts = SERVICES["influxdb"]["volumes"]
    for kind, readers in (("read", ("api", "grafana")), ("write", INGESTERS)):
        path = f"/run/parkwatch/influxdb-{kind}"
        assert f"{path} " in text or f"{path}\n" in text or f'{path}"' in text
        assert f"influxdb-{kind}-token:{path}" in influx_mounts
        for reader in readers:
            assert f"influxdb-{kind}-token:{path}:ro" in SERVICES[reader]["volumes"], reader
            assert f"cat {path}/token" in " ".join(SERVICES[reader]["command"]), reader
    assert "./deploy/influxdb/init:/docker-entrypoint-initdb.d:ro" in influx_mounts


def test_dockerfile_installs_every_package_with_server_extras() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "\nFROM python:3.11-slim\n" in text
    assert 'pip install -c constraints.txt ".[server]"' in text, "the image installs from the lock"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"], "no packages in pyproject.toml"
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}\n" in text, f"the image lacks package {package}"
    assert "\nUSER parkwatch\n" in text
    assert any(line.startswith("COPY ") and "--from" not in line for line in text.splitlines())
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies a missing {source}"
    broker_auth_cmd = SERVICES["broker-auth"]["command"]
    assert broker_auth_cmd[1] in text, "broker_auth.py must be copied to where the job runs it"


def test_broker_auth_refuses_a_weak_ingest_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "broker_auth", ROOT / "deploy" / "mosquitto" / "broker_auth.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = tmp_path / "api.toml"
    config.write_text(f'[api]\nregistry_path = "{tmp_path}/r.sqlite"\n')
    monkeypatch.setenv("PARKWATCH_CONFIG", str(config))
    monkeypatch.setenv("MQTT_INGEST_PASSWORD", "short")
    with pytest.raises(SystemExit, match="MQTT_INGEST_PASSWORD"):
        module.main(["--out-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_dependencies_exist_and_start_in_an_order() -> None:
    graph = {name: set(service.get("depends_on", {})) for name, service in SERVICES.items()}
    assert any(graph.values()), "no service depends on another"
    for name, deps in graph.items():
        assert deps <= set(SERVICES), f"{name} depends on an unknown service"
    started: set[str] = set()
    while len(started) < len(graph):
        ready = {n for n, deps in graph.items() if n not in started and deps <= started}
        assert ready, f"dependency cycle among {set(graph) - started}"
        started |= ready
    assert SERVICES["mosquitto"]["depends_on"]["broker-auth"]["condition"] == "service_completed_successfully"


def test_published_host_ports_are_distinct() -> None:
    ports = [p.rsplit(":", 1)[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(ports) == len(set(ports)), ports
    influx = SERVICES["influxdb"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in influx), "InfluxDB must not be exposed beyond the host"


def test_broker_auth_refuses_an_ingest_account_outside_the_naming_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "broker_auth", ROOT / "deploy" / "mosquitto" / "broker_auth.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.ingest_account_names(
        "parkwatch-ingest", {"MQTT_INGEST_ACCOUNTS": "parkwatch-ingest-1, parkwatch-ingest-2"}
    ) == [
        "parkwatch-ingest",
        "parkwatch-ingest-1",
        "parkwatch-ingest-2",
    ]
    # A gateway's name, another prefix or a passwd-file separator never becomes an ingester account.
    for bad in ("p1/gw-a", "ingest-1", "parkwatch-ingest-", "parkwatch-ingest-1:x"):
        with pytest.raises(SystemExit, match="MQTT_INGEST_ACCOUNTS"):
            module.ingest_account_names("parkwatch-ingest", {"MQTT_INGEST_ACCOUNTS": bad})
    config = tmp_path / "api.toml"
    config.write_text(f'[api]\nregistry_path = "{tmp_path}/r.sqlite"\n')
    monkeypatch.setenv("PARKWATCH_CONFIG", str(config))
    monkeypatch.setenv("MQTT_INGEST_PASSWORD", "x" * 20)
    monkeypatch.setenv("MQTT_INGEST_ACCOUNTS", "other-1")
    with pytest.raises(SystemExit, match="parkwatch-ingest-<n>"):
        module.main(["--out-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
