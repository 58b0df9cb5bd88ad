"""Best server per H3 cell, and pilot pollution, from the serving cell that readings report.

A cellular reading may carry its serving cell: ``cell_id`` (the E-UTRAN / NR cell identity) and
``pci`` (the physical cell id). Per (park, operator, technology, H3 cell):

* every **server** seen there (its ``cell_id``; ``pci:N`` when a reading has only the PCI) with
  at least ``min_samples`` readings gets its median RSRP (``no_service`` readings carry no server
  and are left out);
* the **best server** is the one with the highest median RSRP;
* the **servers within 5 dB** are those whose median is at most ``window_db`` below the best
  (the best included);
* **pilot pollution**: at least ``pollution_servers`` servers within the window (the best and two
  others by default): no server dominates, so the handsets keep reselecting and interfere with
  each other. This is the drive-test notion (too many pilots within a few dB of the strongest,
  none dominant), applied to the serving cells several readings in one cell reported, not to a
  scanner's neighbour list: a cell where one server dominates every reading never shows as
  polluted here even if strong neighbours exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from storage.query import CellSamples

WINDOW_DB: Final = 5.0
POLLUTION_SERVERS: Final = 3
MIN_SERVER_SAMPLES: Final = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLevel:
    """One server in one H3 cell: its id, median RSRP and readings."""

    server: str
    rsrp_median_dbm: float
    samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BestServerCell:
    """The servers of one (park, operator, technology, H3 cell), best first."""

    park: str
    operator: str
    tech: str
    h3: int
    servers: tuple[ServerLevel, ...]
    """Every server with enough readings, by median RSRP, strongest first."""
    within: tuple[ServerLevel, ...]
    """The servers within the window of the best (the best first)."""
    pilot_pollution: bool

    @property
    def best(self) -> ServerLevel:
        return self.servers[0]


def server_ids(cell_id: npt.NDArray[np.float64], pci: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    """The server id of each reading: its ``cell_id``, else ``pci:N``, else None (no server)."""
    out = np.empty(len(cell_id), dtype=object)
    for i, (c, p) in enumerate(zip(cell_id.tolist(), pci.tolist(), strict=True)):
        if c == c and c is not None:
            out[i] = str(int(c))
        elif p == p and p is not None:
            out[i] = f"pci:{int(p)}"
        else:
            out[i] = None
    return out


def best_servers(
    samples: CellSamples,
    *,
    window_db: float = WINDOW_DB,
    pollution_servers: int = POLLUTION_SERVERS,
    min_samples: int = MIN_SERVER_SAMPLES,
) -> list[BestServerCell]:
    """The best server and the servers within ``window_db`` of it, per cell with a known server.

    Cells are ordered by (park, operator, technology, cell).
    """
    if window_db < 0 or pollution_servers < 2 or min_samples < 1:
        raise ValueError("window_db must be >= 0, pollution_servers >= 2, min_samples >= 1")
    server = server_ids(samples.cell_id, samples.pci)
    levels: dict[tuple[str, str, str, int], dict[str, list[float]]] = {}
    for park, cell, op, tech, srv, rsrp in zip(
        samples.park.tolist(),
        samples.h3.tolist(),
        samples.operator.tolist(),
        samples.tech.tolist(),
        server.tolist(),
        samples.rsrp_dbm.tolist(),
        strict=True,
    ):
        # A no_service reading (-140 dBm) has no server; NaN RSRP has no level.
        if srv is None or rsrp != rsrp or rsrp <= -140.0:
            continue
        levels.setdefault((str(park), str(op), str(tech), int(cell)), {}).setdefault(srv, []).append(rsrp)
    out: list[BestServerCell] = []
    for key in sorted(levels):
        servers = sorted(
            (
                ServerLevel(server=s, rsrp_median_dbm=round(float(np.median(v)), 2), samples=len(v))
                for s, v in levels[key].items()
                if len(v) >= min_samples
            ),
            key=lambda lv: (-lv.rsrp_median_dbm, -lv.samples, lv.server),
        )
        if not servers:
            continue
        best = servers[0].rsrp_median_dbm
        within = tuple(s for s in servers if s.rsrp_median_dbm >= best - window_db)
        out.append(
            BestServerCell(
                park=key[0],
                operator=key[1],
                tech=key[2],
                h3=key[3],
                servers=tuple(servers),
                within=within,
                pilot_pollution=len(within) >= pollution_servers,
            )
        )
    return out
