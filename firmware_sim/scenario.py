"""Scenario files: parks, gateways, devices, operators and cell sites, obstacles, probe profiles.

A scenario is a TOML file validated into :class:`Scenario` (msgspec). Type and range errors and
the cross-reference checks of :func:`validate` raise :class:`~firmware_sim.errors.ScenarioError`
naming the key, e.g. ``parks[0].gateways[1].modems[0].operator``. Coordinates are
``[lat, lon]`` pairs in WGS84 degrees. The shipped default is ``scenarios/haiphong.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from contract.ids import Id
from firmware_sim.errors import ScenarioError
from settings.errors import ConfigError
from settings.loader import settings_from_dict

DEFAULT_SCENARIO: Final = "haiphong"
"""Name of the scenario shipped with the package (``firmware_sim/scenarios/haiphong.toml``)."""

Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
LatLon = tuple[Lat, Lon]
Polygon = Annotated[list[LatLon], msgspec.Meta(min_length=3)]
Positive = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Band = Annotated[str, msgspec.Meta(pattern=r"^(B|n)\d{1,3}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

_STRUCT: Final[dict[str, Any]] = {"kw_only": True, "frozen": True, "forbid_unknown_fields": True}


class Sim(msgspec.Struct, **_STRUCT):
    """Simulation clock and randomness.

    Attributes:
        seed: the seed of every random draw; same seed and same simulated time, same values.
        start_ms: simulated epoch milliseconds at start; 0 means "the wall clock at start".
        speed: simulated seconds per real second (1 = real time, 60 = one hour per minute).
        step_s: the device models' fixed integration step in simulated seconds.
    """

    seed: int = 1
    start_ms: Annotated[int, msgspec.Meta(ge=0)] = 0
    speed: Annotated[float, msgspec.Meta(gt=0.0, le=100000.0)] = 1.0
    step_s: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 1.0


class Radio(msgspec.Struct, **_STRUCT):
    """Propagation parameters shared by every operator (see :mod:`firmware_sim.radio`)."""

    shadowing_sigma_db: NonNegative = 7.0
    shadowing_corr_m: Positive = 80.0
    grid_m: Positive = 20.0
    log_distance_exponent: Positive = 3.3
    log_distance_ref_m: Positive = 1.0
    noise_figure_db: NonNegative = 7.0
    load: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    ue_height_m: Positive = 1.5
    city: Literal["medium", "metropolitan", "suburban"] = "suburban"
    fading_sigma_db: NonNegative = 1.5
    margin_m: NonNegative = 1500.0


class Carrier(msgspec.Struct, **_STRUCT):
    """One carrier an operator runs: band (``B3`` = LTE band 3, ``n78`` = NR band n78) and power.

    Attributes:
        rs_power_dbm: reference-signal power per resource element (LTE RS / NR SSB), dBm.
        gain_dbi: antenna gain at boresight, dBi.
        bandwidth_mhz: channel bandwidth.
    """

    band: Band
    rs_power_dbm: float = 18.0
    gain_dbi: float = 17.0
    bandwidth_mhz: Annotated[int, msgspec.Meta(ge=1, le=400)] = 20


class Site(msgspec.Struct, **_STRUCT):
    """A cell site: one sector per azimuth (an empty list means one omni cell) per carrier."""

    id: Id
    lat: Lat
    lon: Lon
    carriers: Annotated[list[Band], msgspec.Meta(min_length=1)]
    height_m: Annotated[float, msgspec.Meta(gt=0.0, le=300.0)] = 30.0
    azimuths_deg: list[Annotated[float, msgspec.Meta(ge=0.0, lt=360.0)]] = msgspec.field(
        default_factory=lambda: [0.0, 120.0, 240.0]
    )
    beamwidth_deg: Annotated[float, msgspec.Meta(gt=0.0, le=360.0)] = 65.0
    power_offset_db: float = 0.0


class Operator(msgspec.Struct, **_STRUCT):
    """A mobile operator (fictional in the default scenario) with its carriers and sites."""

    id: Id
    name: Name
    mnc: Annotated[int, msgspec.Meta(ge=0, le=999)]
    carriers: Annotated[list[Carrier], msgspec.Meta(min_length=1)]
    sites: list[Site]
    mcc: Annotated[int, msgspec.Meta(ge=0, le=999)] = 452


class Obstacle(msgspec.Struct, **_STRUCT):
    """An area with extra loss for every receiver inside it.

    ``building``: a hall whose walls attenuate the signal indoors; ``clutter``: e.g. stacked
    containers or steel structures that shadow outdoor receivers.
    """

    id: Id
    polygon: Polygon
    kind: Literal["building", "clutter"] = "building"
    loss_db: NonNegative = 15.0


class ProbeProfile(msgspec.Struct, **_STRUCT):
    """How a broadband probe target behaves (shaped in the application)."""

    name: Id
    latency_ms: NonNegative = 10.0
    jitter_ms: NonNegative = 2.0
    loss_pct: Percent = 0.0
    down_mbps: Positive = 100.0
    up_mbps: Positive = 50.0


class ScheduledFault(msgspec.Struct, **_STRUCT):
    """A fault at a fixed simulated time (hours after start), lasting ``duration_min``."""

    at_h: NonNegative
    duration_min: Positive = 30.0


class MachineSpec(msgspec.Struct, **_STRUCT):
    """A production machine (CNC, press, moulding machine) behind its own PLC."""

    id: Id
    line: Id
    cycle_s: Positive = 30.0
    reject_pct: Percent = 1.5
    nominal_kw: Positive = 15.0
    mtbf_h: Positive = 30.0
    mttr_min: Positive = 30.0
    maintenance_every_h: Positive = 24.0
    maintenance_min: Positive = 45.0
    setup_min: Positive = 15.0
    faults: list[ScheduledFault] = msgspec.field(default_factory=list)


class MeterSpec(msgspec.Struct, **_STRUCT):
    """An energy meter: base load plus the machines it feeds (ids on the same gateway)."""

    id: Id
    base_kw: NonNegative = 20.0
    machines: list[Id] = msgspec.field(default_factory=list)


class EnvironmentSpec(msgspec.Struct, **_STRUCT):
    """An environment sensor (temperature, humidity, PM2.5, noise, CO2)."""

    id: Id
    indoor: bool = True


class ModemSpec(msgspec.Struct, **_STRUCT):
    """A cellular modem with one SIM. ``tech = "auto"`` camps on NR where it is usable."""

    id: Id
    operator: Id
    tech: Literal["LTE", "NR", "auto"] = "auto"
    gnss: bool | None = None
    """Answer ``AT+QGPSLOC``; default: only on mobile gateways."""


class Route(msgspec.Struct, **_STRUCT):
    """A drive or walk test route: the gateway moves along the waypoints at constant speed."""

    waypoints: Annotated[list[LatLon], msgspec.Meta(min_length=2)]
    speed_kmh: Annotated[float, msgspec.Meta(gt=0.0, le=200.0)] = 25.0
    loop: bool = True
    start_offset_m: NonNegative = 0.0
    """Where the gateway is at simulated time 0, in metres along the route."""


class Gateway(msgspec.Struct, **_STRUCT):
    """A park gateway and the devices it reads; with a ``route`` it is a mobile probe."""

    id: Id
    lat: Lat
    lon: Lon
    height_m: Annotated[float, msgspec.Meta(ge=0.0, le=300.0)] = 1.5
    route: Route | None = None
    factory: str = ""
    """The factory (or hall) whose devices this gateway reads, as the dashboard names it."""
    machines: list[MachineSpec] = msgspec.field(default_factory=list)
    meters: list[MeterSpec] = msgspec.field(default_factory=list)
    environment: list[EnvironmentSpec] = msgspec.field(default_factory=list)
    modems: list[ModemSpec] = msgspec.field(default_factory=list)
    probe_targets: list[Id] = msgspec.field(default_factory=list)
    opcua: bool = False
    """The machines, meters and sensors sit behind one OPC UA server (a SCADA or PLC server of
    the hall) instead of one Modbus TCP server each."""

    @property
    def mobile(self) -> bool:
        return self.route is not None


class Area(msgspec.Struct, **_STRUCT):
    """A named area, documentation only (e.g. a deliberately under-served area)."""

    name: Name
    polygon: Polygon
    note: str = ""


class Park(msgspec.Struct, **_STRUCT):
    """An industrial park: boundary and gateways."""

    id: Id
    name: Name
    boundary: Polygon
    gateways: list[Gateway] = msgspec.field(default_factory=list)


class Scenario(msgspec.Struct, **_STRUCT):
    """A complete simulated world."""

    name: Name
    parks: Annotated[list[Park], msgspec.Meta(min_length=1)]
    operators: Annotated[list[Operator], msgspec.Meta(min_length=1)]
    description: str = ""
    sim: Sim = msgspec.field(default_factory=Sim)
    radio: Radio = msgspec.field(default_factory=Radio)
    obstacles: list[Obstacle] = msgspec.field(default_factory=list)
    probe_profiles: list[ProbeProfile] = msgspec.field(default_factory=list)
    underserved: list[Area] = msgspec.field(default_factory=list)

    def gateways(self) -> Iterator[tuple[Park, Gateway]]:
        """Every gateway with its park, in file order."""
        for park in self.parks:
            for gw in park.gateways:
                yield park, gw

    def operator(self, operator_id: str) -> Operator:
        """The operator with this id (``KeyError`` if none)."""
        for op in self.operators:
            if op.id == operator_id:
                return op
        raise KeyError(operator_id)

    def profile(self, name: str) -> ProbeProfile:
        """The probe profile with this name (``KeyError`` if none)."""
        for p in self.probe_profiles:
            if p.name == name:
                return p
        raise KeyError(name)


def _dupes(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in items if i in seen or seen.add(i)})  # type: ignore[func-returns-value]


def validate(scenario: Scenario, where: str = "scenario") -> Scenario:
    """Check what types cannot: unique ids and references between sections.

    Raises:
        ScenarioError: naming the first bad key.
    """
    from firmware_sim.radio.bands import BANDS  # numpy-free

    def fail(key: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{where}: {key}: {msg}")

    if d := _dupes([p.id for p in scenario.parks]):
        raise fail("parks", f"duplicate park id(s) {d}")
    if d := _dupes([g.id for _, g in scenario.gateways()]):
        raise fail("parks[].gateways", f"duplicate gateway id(s) {d}")
    if d := _dupes([o.id for o in scenario.operators]):
        raise fail("operators", f"duplicate operator id(s) {d}")
    if d := _dupes([p.name for p in scenario.probe_profiles]):
        raise fail("probe_profiles", f"duplicate profile name(s) {d}")
    op_ids = {o.id for o in scenario.operators}
    profiles = {p.name for p in scenario.probe_profiles}
    for i, op in enumerate(scenario.operators):
        bands = [c.band for c in op.carriers]
        if d := _dupes(bands):
            raise fail(f"operators[{i}].carriers", f"duplicate band(s) {d}")
        for j, c in enumerate(op.carriers):
            if c.band not in BANDS:
                raise fail(
                    f"operators[{i}].carriers[{j}].band", f"unknown band {c.band!r}; known: {sorted(BANDS)}"
                )
        if d := _dupes([s.id for s in op.sites]):
            raise fail(f"operators[{i}].sites", f"duplicate site id(s) {d}")
        for j, s in enumerate(op.sites):
            for k, band in enumerate(s.carriers):
                if band not in bands:
                    raise fail(
                        f"operators[{i}].sites[{j}].carriers[{k}]",
                        f"band {band!r} is not one of operator {op.id!r}'s carriers {bands}",
                    )
    for pi, park in enumerate(scenario.parks):
        for gi, gw in enumerate(park.gateways):
            key = f"parks[{pi}].gateways[{gi}]"
            devs = (
                [m.id for m in gw.machines]
                + [m.id for m in gw.meters]
                + [e.id for e in gw.environment]
                + [m.id for m in gw.modems]
            )
            if d := _dupes(devs):
                raise fail(key, f"duplicate device id(s) {d}")
            machines = {m.id for m in gw.machines}
            for mi, meter in enumerate(gw.meters):
                for k, mid in enumerate(meter.machines):
                    if mid not in machines:
                        raise fail(f"{key}.meters[{mi}].machines[{k}]", f"no machine {mid!r} on this gateway")
            for mi, modem in enumerate(gw.modems):
                if modem.operator not in op_ids:
                    raise fail(
                        f"{key}.modems[{mi}].operator",
                        f"unknown operator {modem.operator!r}; known: {sorted(op_ids)}",
                    )
            for k, name in enumerate(gw.probe_targets):
                if name not in profiles:
                    raise fail(
                        f"{key}.probe_targets[{k}]",
                        f"unknown probe profile {name!r}; known: {sorted(profiles)}",
                    )
    return scenario


def scenario_from_dict(data: dict[str, Any], *, where: str = "scenario") -> Scenario:
    """Validate a parsed TOML table into a :class:`Scenario`.

    Raises:
        ScenarioError: naming the bad key.
    """
    try:
        scenario = settings_from_dict(Scenario, data, where=where)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from exc
    return validate(scenario, where)


def default_scenario_path() -> Path:
    """Path of the shipped default scenario file."""
    return Path(str(resources.files("firmware_sim.scenarios").joinpath(f"{DEFAULT_SCENARIO}.toml")))


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file; ``None`` or ``"default"`` or ``"haiphong"`` loads the shipped one.

    Raises:
        ScenarioError: the file is missing, not TOML, or a key is invalid (named in the message).
    """
    p = default_scenario_path() if path is None or str(path) in ("default", DEFAULT_SCENARIO) else Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(
            f"scenario file {p} not found (use 'default' for the shipped Hai Phong scenario)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from exc
    return scenario_from_dict(data, where=str(p))
