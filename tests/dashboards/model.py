"""Helpers for the dashboard tests: the checked-in JSON, its queries and the shared schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from dashboards.build import DASHBOARDS, JSON_DIR

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
SCHEMAS: Final = PROJECT_ROOT / "tests" / "schemas"
GRAFANA_SCHEMAS: Final = SCHEMAS / "grafana"
PROVISIONING: Final = PROJECT_ROOT / "dashboards" / "provisioning"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """File name (without ``.json``) → the checked-in dashboard."""
    return {name: json.loads((JSON_DIR / f"{name}.json").read_text(encoding="utf-8")) for name in DASHBOARDS}


def load_schema(name: str) -> dict[str, Any]:
    path = GRAFANA_SCHEMAS / f"{name}.jsonschema.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def provisioned_datasources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((PROVISIONING / "datasources").glob("*.yaml")):
        out.extend(yaml.safe_load(path.read_text(encoding="utf-8")).get("datasources", []))
    return out


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True, slots=True)
class Query:
    dashboard: str
    where: str
    """Panel title and refId, or ``variable <name>``."""
    text: str

    def __str__(self) -> str:
        return f"{self.dashboard}: {self.where}"


def queries(name: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    """Every InfluxQL query of a dashboard: panel targets and template variables."""
    for panel in panels(dashboard):
        for t in panel.get("targets", []):
            if t["datasource"]["type"] == "influxdb":
                yield Query(name, f"panel {panel['title']!r} {t['refId']}", t["query"])
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            yield Query(name, f"variable {var['name']}", var["query"])


def walk(obj: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a JSON value."""
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk(v)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """A panel target that reads the parkwatch API through the Infinity datasource."""

    panel: str
    target: dict[str, Any]

    @property
    def path(self) -> str:
        return str(self.target["url"])

    @property
    def params(self) -> dict[str, str]:
        return {p["key"]: p["value"] for p in self.target["url_options"]["params"]}


def api_requests(dashboard: dict[str, Any]) -> list[ApiRequest]:
    """Every Infinity (API) target of a dashboard, with its panel's title."""
    return [
        ApiRequest(panel["title"], t)
        for panel in panels(dashboard)
        for t in panel.get("targets", [])
        if t["datasource"]["type"] == "yesoreyeram-infinity-datasource"
    ]
