"""The simulated world: every gateway's device models, positions and radio links at a simulated time.

Models advance in fixed steps of ``sim.step_s`` from simulated time 0, so the values at a given
simulated time depend only on the scenario and its seed, never on when or how often they are read.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from firmware_sim.models.energy import EnergyModel
from firmware_sim.models.environment import EnvironmentModel
from firmware_sim.models.machine import MachineModel
from firmware_sim.scenario import Gateway, ModemSpec, Park, Route, Scenario

if TYPE_CHECKING:
    from firmware_sim.radio.environment import CellInfo, RadioEnvironment

ROUTE_SAMPLE_M: Final = 10.0
"""Radio values along a route are computed once, every this many metres, and looked up."""
FADING_PERIOD_S: Final = 10.0
"""Fast-fading draws change every this many simulated seconds."""
QRXLEVMIN_DBM: Final = -124.0
"""A modem camps on a cell only when its RSRP is at least this (S-criterion, srxlev > 0)."""
NR_MIN_RSRP_DBM: Final = -110.0
NR_MIN_SINR_DB: Final = 0.0
"""An ``auto`` modem camps on NR only when NR is at least this good."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """What a modem sees at one instant; ``cell is None`` means no service."""

    operator: str
    tech: str
    rsrp_dbm: float
    rsrq_db: float
    sinr_db: float
    rssi_dbm: float
    cell: CellInfo | None


def _legs(route: Route) -> tuple[list[tuple[float, float]], list[float], float]:
    pts = [*route.waypoints, route.waypoints[0]] if route.loop else list(route.waypoints)
    lat0 = math.radians(pts[0][0])
    legs: list[float] = []
    for (a_lat, a_lon), (b_lat, b_lon) in itertools.pairwise(pts):
        dx = (b_lon - a_lon) * 111_320.0 * math.cos(lat0)
        dy = (b_lat - a_lat) * 110_574.0
        legs.append(math.hypot(dx, dy))
    return pts, legs, lat0


def route_length_m(route: Route) -> float:
    """Length of one pass (one lap of a loop), metres."""
    return sum(_legs(route)[1])


def route_distance_m(route: Route, t_s: float) -> float:
    """Distance from the route's start after ``t_s`` seconds (wrapped on a loop, capped otherwise)."""
    total = route_length_m(route)
    dist = route.start_offset_m + route.speed_kmh / 3.6 * t_s
    if total <= 0.0:
        return 0.0
    return dist % total if route.loop else min(dist, total)


def route_point(route: Route, dist_m: float) -> tuple[float, float, float]:
    """(lat, lon, course over ground in degrees) at ``dist_m`` metres along the route."""
    pts, legs, lat0 = _legs(route)
    for i, leg in enumerate(legs):
        if dist_m <= leg or i == len(legs) - 1:
            f = 0.0 if leg == 0.0 else min(1.0, max(0.0, dist_m / leg))
            (a_lat, a_lon), (b_lat, b_lon) = pts[i], pts[i + 1]
            course = math.degrees(math.atan2((b_lon - a_lon) * math.cos(lat0), b_lat - a_lat)) % 360.0
            return a_lat + (b_lat - a_lat) * f, a_lon + (b_lon - a_lon) * f, course
        dist_m -= leg
    return pts[0][0], pts[0][1], 0.0


def route_position(route: Route, t_s: float) -> tuple[float, float, float]:
    """(lat, lon, course over ground in degrees) after ``t_s`` seconds on the route."""
    return route_point(route, route_distance_m(route, t_s))


class GatewayModels:
    """The device models of one gateway, stepped in lockstep (machines before meters)."""

    def __init__(self, park: Park, gateway: Gateway, *, seed: int, start_ms: int, step_s: float) -> None:
        self.park = park
        self.gateway = gateway
        key = f"{seed}:{gateway.id}"
        self.step_s = step_s
        self.t_s = 0.0
        self.machines = {m.id: MachineModel(m, seed=key) for m in gateway.machines}
        self.meters = {
            m.id: EnergyModel(m, seed=key, machines=[self.machines[i] for i in m.machines], start_ms=start_ms)
            for m in gateway.meters
        }
        self.environment = {
            e.id: EnvironmentModel(e, seed=key, start_ms=start_ms) for e in gateway.environment
        }

    def advance_to(self, t_s: float) -> None:
        """Step every model until simulated time ``t_s`` (never backwards)."""
        while self.t_s + self.step_s <= t_s + 1e-9:
            for m in self.machines.values():
                m.step(self.step_s)
            for e in self.meters.values():
                e.step(self.step_s)
            for s in self.environment.values():
                s.step(self.step_s)
            self.t_s += self.step_s

    def position(self, t_s: float) -> tuple[float, float, float]:
        """(lat, lon, course) of the gateway at ``t_s``; fixed gateways have course 0."""
        if self.gateway.route is None:
            return self.gateway.lat, self.gateway.lon, 0.0
        return route_position(self.gateway.route, t_s)


class World:
    """All gateways of a scenario plus its radio environment (built on first use: numpy)."""

    def __init__(self, scenario: Scenario, *, start_ms: int) -> None:
        self.scenario = scenario
        self.start_ms = start_ms
        self.gateways = {
            gw.id: GatewayModels(
                park, gw, seed=scenario.sim.seed, start_ms=start_ms, step_s=scenario.sim.step_s
            )
            for park, gw in scenario.gateways()
        }
        self._radio: RadioEnvironment | None = None
        self._link_cache: dict[tuple[float, float, str, str], Link] = {}
        self._route_links: dict[tuple[object, ...], list[Link]] = {}

    @property
    def radio(self) -> RadioEnvironment:
        if self._radio is None:
            from firmware_sim.radio.environment import RadioEnvironment

            self._radio = RadioEnvironment(self.scenario)
        return self._radio

    def advance_to(self, t_s: float) -> None:
        """Advance every gateway's models to simulated time ``t_s``."""
        for g in self.gateways.values():
            g.advance_to(t_s)

    def _mean_link(self, lat: float, lon: float, operator: str, tech: str) -> Link:
        key = (round(lat, 6), round(lon, 6), operator, tech)
        link = self._link_cache.get(key)
        if link is None:
            m = self.radio.measure([lat], [lon], operator=operator, tech=tech)
            idx = int(m.serving[0])
            link = Link(
                operator=operator,
                tech=tech,
                rsrp_dbm=float(m.rsrp_dbm[0]),
                rsrq_db=float(m.rsrq_db[0]),
                sinr_db=float(m.sinr_db[0]),
                rssi_dbm=float(m.rssi_dbm[0]),
                cell=self.radio.cell(operator, tech, idx) if idx >= 0 else None,
            )
            if len(self._link_cache) > 100_000:
                self._link_cache.clear()
            self._link_cache[key] = link
        return link

    def _links_along(self, route: Route, operator: str, tech: str) -> list[Link]:
        key = (tuple(route.waypoints), route.loop, operator, tech)
        links = self._route_links.get(key)
        if links is None:
            n = int(route_length_m(route) // ROUTE_SAMPLE_M) + 1
            pts = [route_point(route, i * ROUTE_SAMPLE_M) for i in range(n)]
            m = self.radio.measure([p[0] for p in pts], [p[1] for p in pts], operator=operator, tech=tech)
            links = [
                Link(
                    operator=operator,
                    tech=tech,
                    rsrp_dbm=float(m.rsrp_dbm[i]),
                    rsrq_db=float(m.rsrq_db[i]),
                    sinr_db=float(m.sinr_db[i]),
                    rssi_dbm=float(m.rssi_dbm[i]),
                    cell=self.radio.cell(operator, tech, int(m.serving[i])) if m.serving[i] >= 0 else None,
                )
                for i in range(n)
            ]
            self._route_links[key] = links
        return links

    def _base_link(self, gateway_id: str, operator: str, tech: str, t_s: float) -> Link:
        gw = self.gateways[gateway_id].gateway
        if gw.route is None:
            return self._mean_link(gw.lat, gw.lon, operator, tech)
        links = self._links_along(gw.route, operator, tech)
        i = round(route_distance_m(gw.route, t_s) / ROUTE_SAMPLE_M)
        return links[min(i, len(links) - 1)]

    def link(self, gateway_id: str, modem: ModemSpec, t_s: float) -> Link:
        """What ``modem`` of ``gateway_id`` sees at simulated time ``t_s`` (with seeded fast fading).

        Along a route the mean values are those of the nearest point sampled every
        :data:`ROUTE_SAMPLE_M` metres.
        """
        if modem.tech == "auto":
            nr = self._base_link(gateway_id, modem.operator, "NR", t_s)
            usable = nr.cell is not None and nr.rsrp_dbm >= NR_MIN_RSRP_DBM and nr.sinr_db >= NR_MIN_SINR_DB
            base = nr if usable else self._base_link(gateway_id, modem.operator, "LTE", t_s)
        else:
            base = self._base_link(gateway_id, modem.operator, modem.tech, t_s)
        if base.cell is None:
            return base
        bucket = int(t_s // FADING_PERIOD_S)
        rng = random.Random(f"{self.scenario.sim.seed}:{gateway_id}:{modem.id}:{bucket}")
        sigma = self.scenario.radio.fading_sigma_db
        fade = rng.gauss(0.0, sigma)
        nr_tech = base.tech == "NR"
        if base.rsrp_dbm + fade < QRXLEVMIN_DBM:
            nan = float("nan")
            return Link(
                operator=base.operator,
                tech=base.tech,
                rsrp_dbm=nan,
                rsrq_db=nan,
                sinr_db=nan,
                rssi_dbm=nan,
                cell=None,
            )
        return Link(
            operator=base.operator,
            tech=base.tech,
            rsrp_dbm=min(-31.0, max(-156.0, base.rsrp_dbm + fade)),
            rsrq_db=min(
                20.0 if nr_tech else -3.0,
                max(-43.0 if nr_tech else -19.5, base.rsrq_db + rng.gauss(0.0, 0.5)),
            ),
            sinr_db=min(40.0, max(-23.0, base.sinr_db + fade * 0.8 + rng.gauss(0.0, 0.5))),
            rssi_dbm=min(-20.0, max(-120.0, base.rssi_dbm + fade)),
            cell=base.cell,
        )
