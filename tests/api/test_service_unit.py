"""The read service over the in-memory query backend: caching by data version, scoping, fleet.

Fast unit tests beside the real-DuckDB ones (``test_service_cache.py``, ``test_endpoints.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from api.models import Loss
from api.services import Services
from storage.query import CellStats, LedgerRows, Scope, StatusRows
from tests.api.conftest import api_settings
from tests.fakes import FakeQuery

T0 = datetime(2026, 11, 2, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
WEEK = Scope(parks=None, start=T0, end=T0 + timedelta(days=7))
CELL = 0x8A65_9A52_5B1F_FFF


def _cells(*rows: tuple[str, str, str, float]) -> CellStats:
    table: CellStats = CellStats.from_rows(
        [
            {"park": park, "h3": CELL + i, "operator": op, "tech": tech, "samples": 20, "devices": 2,
             "rsrp_p10_dbm": rsrp, "rsrp_median_dbm": rsrp, "first_ms": T0_MS, "last_ms": T0_MS}
            for i, (park, op, tech, rsrp) in enumerate(rows)
        ]
    )  # fmt: skip
    return table


def test_a_repeated_query_is_answered_from_the_cache() -> None:
    fake = FakeQuery(cells=_cells(("p1", "Sao Bien", "LTE", -90.0)))
    service = Services.build(api_settings(api={"cache_ttl_s": 60.0}), fake)
    first = service.coverage.cells(WEEK, 10).stats
    assert service.coverage.cells(WEEK, 10).stats is first
    assert fake.calls.count("cell_stats") == 1


def test_an_operator_filter_is_cut_from_the_cached_unfiltered_answer() -> None:
    fake = FakeQuery(cells=_cells(("p1", "Sao Bien", "LTE", -90.0), ("p1", "Hai Dang", "NR", -120.0)))
    service = Services.build(api_settings(api={"cache_ttl_s": 60.0}), fake)
    assert len(service.coverage.cells(WEEK, 10).stats) == 2
    only = Scope(parks=None, start=WEEK.start, end=WEEK.end, operator="hai dang")
    cut = service.coverage.cells(only, 10).stats
    assert cut.operator.tolist() == ["Hai Dang"] and fake.calls.count("cell_stats") == 1


def test_without_a_cache_every_call_reads_the_backend() -> None:
    fake = FakeQuery(cells=_cells(("p1", "Sao Bien", "LTE", -90.0)))
    service = Services.build(api_settings(api={"cache_ttl_s": 0.0}), fake)
    service.coverage.cells(WEEK, 10)
    service.coverage.cells(WEEK, 10)
    assert fake.calls.count("cell_stats") == 2


def test_fleet_marks_a_gateway_silent_past_the_offline_limit_and_keeps_its_loss_ledger() -> None:
    status = StatusRows.from_rows(
        [
            {"ts_ms": T0_MS, "park": "p1", "gw": "gw-1", "state": "online", "backlog": 3.0},
            {"ts_ms": T0_MS - 3_600_000, "park": "p1", "gw": "gw-2", "state": "online"},
        ]
    )
    ledger = LedgerRows.from_rows(
        [{"ts_ms": T0_MS, "park": "p1", "gw": "gw-1", "received": 10, "missing": 2, "last_seq": 11}]
    )
    fake = FakeQuery(status_rows=status, ledger_rows=ledger)
    service = Services.build(api_settings(), fake)
    fleet = {g.gw: g for g in service.fleet.gateways(WEEK, now_ms=T0_MS + 1000)}
    assert fleet["gw-1"].online is True and fleet["gw-1"].backlog == 3
    assert isinstance(fleet["gw-1"].loss, Loss) and fleet["gw-1"].loss.missing == 2
    assert fleet["gw-2"].online is False and fleet["gw-2"].loss is None
    assert np.isin(["status", "ledger"], fake.calls).all()
