"""The radio environment of a scenario: RSRP, RSRQ, SINR per operator and technology at any point.

For each operator and technology (LTE, NR) every sector of every site is a cell. At a receiver:

* per-cell RSRP (dBm per resource element) = RS power + antenna gain + sector pattern
  - path loss (:mod:`firmware_sim.radio.propagation`) - obstacle losses + the operator's shadowing;
* the serving cell is the strongest one of that operator and technology;
* interference comes from the operator's other cells on the serving cell's band, each loaded to
  ``radio.load``; thermal noise per resource element is ``-174 + 10 log10(SCS) + NF`` dBm;
* ``SINR = S / (I + N)``; ``RSSI`` sums every cell on the band over the 12 sub-carriers of a
  resource block times the number of resource blocks; ``RSRQ = N_RB * RSRP / RSSI`` (TS 36.214).

Everything is vectorised over points and cells; large point sets are processed in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware_sim.radio.bands import BANDS
from firmware_sim.radio.propagation import (
    HATA_MAX_FREQ_MHZ,
    FloatArray,
    LocalProjection,
    ShadowField,
    antenna_gain_db,
    hata_path_loss_db,
    log_distance_path_loss_db,
    points_in_polygon,
)
from firmware_sim.scenario import Scenario

NO_SERVICE_RSRP_DBM: Final = -140.0
"""Below this strongest RSRP the modem finds no cell (``+QENG: "servingcell","SEARCH"``)."""
_CHUNK: Final = 20_000
_RB_PER_MHZ: Final[dict[int, float]] = {15: 5.0, 30: 2.5}
"""Resource blocks per MHz of channel (approximately, for 15 and 30 kHz sub-carrier spacing)."""

TECHS: Final = ("LTE", "NR")


@dataclass(frozen=True, slots=True, kw_only=True)
class CellInfo:
    """Static description of one cell, as a modem reports it."""

    operator: str
    tech: str
    site: str
    band: str
    band_number: int
    duplex: str
    arfcn: int
    pci: int
    cell_id: int
    tac: int
    bandwidth_mhz: int
    scs_khz: int
    mcc: int
    mnc: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _CellTable:
    infos: list[CellInfo]
    x: FloatArray
    y: FloatArray
    height_m: FloatArray
    azimuth_deg: FloatArray
    beamwidth_deg: FloatArray
    freq_mhz: FloatArray
    eirp_dbm: FloatArray
    band_idx: npt.NDArray[np.int64]
    scs_khz: FloatArray
    n_rb: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """Serving-cell values at each point (NaN and ``serving == -1`` where there is no service)."""

    rsrp_dbm: FloatArray
    rsrq_db: FloatArray
    sinr_db: FloatArray
    rssi_dbm: FloatArray
    serving: npt.NDArray[np.int64]


def _db_to_lin(db: FloatArray) -> FloatArray:
    return np.asarray(10.0 ** (db / 10.0), dtype=np.float64)


def _lin_to_db(lin: FloatArray) -> FloatArray:
    return np.asarray(10.0 * np.log10(np.maximum(lin, 1e-30)), dtype=np.float64)


class RadioEnvironment:
    """The radio world of one scenario; deterministic for the scenario's seed."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        radio = scenario.radio
        lats: list[float] = []
        lons: list[float] = []
        for park in scenario.parks:
            lats += [p[0] for p in park.boundary]
            lons += [p[1] for p in park.boundary]
            for gw in park.gateways:
                lats.append(gw.lat)
                lons.append(gw.lon)
                if gw.route:
                    lats += [p[0] for p in gw.route.waypoints]
                    lons += [p[1] for p in gw.route.waypoints]
        self.projection = LocalProjection(lat0=float(np.mean(lats)), lon0=float(np.mean(lons)))
        x, y = self.projection.to_xy(lats, lons)
        m = radio.margin_m
        self.extent_m = (float(x.min() - m), float(x.max() + m), float(y.min() - m), float(y.max() + m))
        self._shadow: dict[str, ShadowField] = {}
        for i, op in enumerate(scenario.operators):
            self._shadow[op.id] = ShadowField.generate(
                seed=[scenario.sim.seed, i, 0x5AD0],
                x_range_m=(self.extent_m[0], self.extent_m[1]),
                y_range_m=(self.extent_m[2], self.extent_m[3]),
                grid_m=radio.grid_m,
                sigma_db=radio.shadowing_sigma_db,
                corr_m=radio.shadowing_corr_m,
            )
        self._obstacles = []
        for ob in scenario.obstacles:
            px, py = self.projection.to_xy([p[0] for p in ob.polygon], [p[1] for p in ob.polygon])
            self._obstacles.append((px, py, ob.loss_db))
        self._tables: dict[tuple[str, str], _CellTable] = {}
        for oi, op in enumerate(scenario.operators):
            carriers = {c.band: c for c in op.carriers}
            for tech in TECHS:
                infos: list[CellInfo] = []
                rows: list[tuple[float, ...]] = []
                bands: list[int] = []
                band_names: list[str] = []
                for si, site in enumerate(op.sites):
                    sx, sy = self.projection.to_xy(site.lat, site.lon)
                    azimuths = site.azimuths_deg or [float("nan")]
                    for band in site.carriers:
                        info = BANDS[band]
                        if info.tech != tech:
                            continue
                        c = carriers[band]
                        if band not in band_names:
                            band_names.append(band)
                        for k, az in enumerate(azimuths):
                            node = 10_000 + oi * 1000 + si
                            cell_id = node * 256 + k if tech == "LTE" else node * 4096 + k
                            pci = (si * 3 + k + oi * 7) % (504 if tech == "LTE" else 1008)
                            infos.append(
                                CellInfo(
                                    operator=op.id,
                                    tech=tech,
                                    site=site.id,
                                    band=band,
                                    band_number=info.number,
                                    duplex=info.duplex,
                                    arfcn=info.arfcn,
                                    pci=pci,
                                    cell_id=cell_id,
                                    tac=0x1000 + oi * 0x100 + si // 4,
                                    bandwidth_mhz=c.bandwidth_mhz,
                                    scs_khz=info.scs_khz,
                                    mcc=op.mcc,
                                    mnc=op.mnc,
                                )
                            )
                            n_rb = c.bandwidth_mhz * _RB_PER_MHZ[info.scs_khz]
                            rows.append(
                                (
                                    float(sx),
                                    float(sy),
                                    site.height_m,
                                    az,
                                    site.beamwidth_deg,
                                    info.freq_mhz,
                                    c.rs_power_dbm + c.gain_dbi + site.power_offset_db,
                                    float(info.scs_khz),
                                    n_rb,
                                )
                            )
                            bands.append(band_names.index(band))
                if not rows:
                    continue
                a = np.array(rows, dtype=np.float64)
                self._tables[(op.id, tech)] = _CellTable(
                    infos=infos,
                    x=a[:, 0],
                    y=a[:, 1],
                    height_m=a[:, 2],
                    azimuth_deg=a[:, 3],
                    beamwidth_deg=a[:, 4],
                    freq_mhz=a[:, 5],
                    eirp_dbm=a[:, 6],
                    scs_khz=a[:, 7],
                    n_rb=a[:, 8],
                    band_idx=np.array(bands, dtype=np.int64),
                )

    def layers(self) -> list[tuple[str, str]]:
        """Every (operator id, technology) that has at least one cell, in scenario order."""
        return list(self._tables)

    def cells(self) -> list[CellInfo]:
        """Every cell of every operator and technology, in scenario order."""
        return [info for table in self._tables.values() for info in table.infos]

    def cell(self, operator: str, tech: str, index: int) -> CellInfo:
        """Static description of a serving cell index returned by :meth:`measure`."""
        return self._tables[(operator, tech)].infos[index]

    def obstacle_loss_db(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Sum of the losses of the obstacles each point lies in."""
        loss = np.zeros(np.shape(x), dtype=np.float64)
        for px, py, loss_db in self._obstacles:
            loss += np.where(points_in_polygon(x, y, px, py), loss_db, 0.0)
        return loss

    def measure(self, lat: npt.ArrayLike, lon: npt.ArrayLike, *, operator: str, tech: str) -> Measurement:
        """Serving-cell RSRP/RSRQ/SINR/RSSI of ``operator`` on ``tech`` at each point."""
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        n = lat_a.shape[0]
        out = Measurement(
            rsrp_dbm=np.full(n, np.nan),
            rsrq_db=np.full(n, np.nan),
            sinr_db=np.full(n, np.nan),
            rssi_dbm=np.full(n, np.nan),
            serving=np.full(n, -1, dtype=np.int64),
        )
        table = self._tables.get((operator, tech))
        if table is None or n == 0:
            return out
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(n, start + _CHUNK))
            self._measure_chunk(lat_a[sl], lon_a[sl], operator, table, out, sl)
        return out

    def _measure_chunk(
        self,
        lat: FloatArray,
        lon: FloatArray,
        operator: str,
        t: _CellTable,
        out: Measurement,
        sl: slice,
    ) -> None:
        radio = self.scenario.radio
        x, y = self.projection.to_xy(lat, lon)
        dx = x[:, None] - t.x[None, :]
        dy = y[:, None] - t.y[None, :]
        dist = np.hypot(dx, dy)
        bearing = np.degrees(np.arctan2(dx, dy)) % 360.0
        hata = t.freq_mhz <= HATA_MAX_FREQ_MHZ
        loss = np.empty_like(dist)
        if hata.any():
            loss[:, hata] = hata_path_loss_db(
                dist[:, hata],
                t.freq_mhz[hata],
                base_height_m=t.height_m[hata],
                mobile_height_m=radio.ue_height_m,
                city=radio.city,
            )
        if (~hata).any():
            loss[:, ~hata] = log_distance_path_loss_db(
                dist[:, ~hata],
                t.freq_mhz[~hata],
                exponent=radio.log_distance_exponent,
                ref_distance_m=radio.log_distance_ref_m,
            )
        local_db = self._shadow[operator].sample(x, y) - self.obstacle_loss_db(x, y)
        rx_dbm = t.eirp_dbm[None, :] + antenna_gain_db(bearing, t.azimuth_deg, t.beamwidth_deg) - loss
        rx_dbm += local_db[:, None]
        serving = np.argmax(rx_dbm, axis=1)
        rows = np.arange(len(x))
        s_dbm = rx_dbm[rows, serving]
        rx_lin = _db_to_lin(rx_dbm)
        same_band = t.band_idx[None, :] == t.band_idx[serving][:, None]
        others = np.where(same_band, rx_lin, 0.0)
        others[rows, serving] = 0.0
        load = radio.load
        noise_lin = _db_to_lin(-174.0 + 10.0 * np.log10(t.scs_khz[serving] * 1000.0) + radio.noise_figure_db)
        s_lin = _db_to_lin(s_dbm)
        interference = others.sum(axis=1) * load
        sinr = _lin_to_db(s_lin / (interference + noise_lin))
        # Reference signals occupy 2 of 12 sub-carriers whatever the load.
        activity = 2.0 / 12.0 + 10.0 / 12.0 * load
        per_re = (s_lin + others.sum(axis=1)) * activity + noise_lin
        n_rb = t.n_rb[serving]
        rssi = _lin_to_db(12.0 * n_rb * per_re)
        rsrq = s_dbm + 10.0 * np.log10(n_rb) - rssi
        ok = s_dbm >= NO_SERVICE_RSRP_DBM
        tech_is_nr = t.infos[0].tech == "NR"
        rsrq_lo, rsrq_hi = (-43.0, 20.0) if tech_is_nr else (-19.5, -3.0)
        out.rsrp_dbm[sl] = np.where(ok, np.clip(s_dbm, -156.0, -31.0), np.nan)
        out.sinr_db[sl] = np.where(ok, np.clip(sinr, -23.0, 40.0), np.nan)
        out.rsrq_db[sl] = np.where(ok, np.clip(rsrq, rsrq_lo, rsrq_hi), np.nan)
        out.rssi_dbm[sl] = np.where(ok, np.clip(rssi, -120.0, -20.0), np.nan)
        out.serving[sl] = np.where(ok, serving, -1)
