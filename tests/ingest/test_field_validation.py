"""Field-level dead letters, normalised names, the age limits and the dead-letter summary (unit)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from contract.readings import Cellular
from contract.topics import topic_for
from ingest.deadletter_log import DeadLetterSummary
from ingest.model import WriteBatch, WriteResult
from ingest.mqtt import Message
from ingest.service import Ingester
from settings.ingest import IngestSettings
from settings.loader import settings_from_dict

NOW = int(time.time() * 1000)


class NullSink:
    async def start(self) -> list[Any]:
        return []

    async def write(self, batch: WriteBatch) -> WriteResult:
        return WriteResult(readings=batch.reading_count())

    async def aclose(self) -> None:
        return None


def _ingester(tmp_path: Path, **ingest: Any) -> Ingester:
    data = {"ingest": {"spool_dir": str(tmp_path / "spool"), "metrics_enabled": False, **ingest}}
    settings = settings_from_dict(IngestSettings, data)
    return Ingester(settings, sink=NullSink())


def _msg(*readings: dict[str, Any], seq: int = 1) -> Message:
    payload = json.dumps({"v": 1, "gw": "gw-1", "seq": seq, "readings": list(readings)}).encode()
    return Message(
        topic=topic_for("hp", "gw-1", "telemetry"),
        payload=payload,
        received_ms=NOW,
        content_type=None,
        mid=seq,
        qos=1,
        generation=0,
    )


def _cell(**extra: Any) -> dict[str, Any]:
    return {"kind": "cellular", "ts": NOW, "dev": "m1", "operator": "Op", "tech": "LTE", **extra}


def test_a_bad_sinr_is_dead_lettered_alone_and_counted_by_code(tmp_path: Path) -> None:
    ing = _ingester(tmp_path)
    out = WriteBatch()
    assert ing.handle(_msg(_cell(rsrp_dbm=-101, sinr_db=41.0)), out) == 1
    (cell,) = out.parts[0].readings
    assert isinstance(cell, Cellular) and (cell.rsrp_dbm, cell.sinr_db) == (-101.0, None)
    (dead,) = out.dead_letters
    assert dead.reason == "out_of_range: sinr_db=41.0 > 40"
    assert ing.metrics.dead_letter_reasons == {"out_of_range:sinr_db": 1}
    assert ing.metrics.dead_letters == {"field": 1}
    text = ing.metrics.render().decode()
    assert 'parkwatch_ingest_dead_letter_reasons_total{code="out_of_range",field="sinr_db"} 1' in text


def test_operator_aliases_and_plmn_codes(tmp_path: Path) -> None:
    ing = _ingester(
        tmp_path,
        operator_aliases={"Lotus": "Lotus Mobile"},
        operators_by_plmn={"452-04": "Viettel"},
    )
    out = WriteBatch()
    ing.handle(
        _msg(
            _cell(operator="lotus"),
            _cell(operator="VTL", mcc=452, mnc=4),
            _cell(operator="Sao Bien", tech="5g"),
        ),
        out,
    )
    names = [(r.operator, r.tech) for r in out.parts[0].readings if isinstance(r, Cellular)]
    assert names == [("Lotus Mobile", "LTE"), ("Viettel", "LTE"), ("Sao Bien", "NR")]


def test_the_live_and_import_age_limits_differ(tmp_path: Path) -> None:
    ing = _ingester(tmp_path, max_age_days=30)
    old = _cell(ts=NOW - 120 * 86_400_000)
    live, imported = WriteBatch(), WriteBatch()
    assert ing.handle(_msg(old), live) == 0
    assert live.dead_letters[0].reason.startswith("too_old: ")
    assert ing.handle(_msg(old, seq=2), imported, imported=True) == 1
    assert imported.parts[0].replay  # an import is always checked against what is stored
    capped = _ingester(tmp_path, import_max_age_days=90)
    assert capped.handle(_msg(old), WriteBatch(), imported=True) == 0


def test_the_summary_is_rate_limited_and_grouped(caplog: pytest.LogCaptureFixture) -> None:
    summary = DeadLetterSummary(60.0, started_s=0.0)
    for _ in range(9):
        summary.note("out_of_range:sinr_db")
    summary.note("too_old:ts", 3)
    with caplog.at_level(logging.WARNING, logger="ingest.dead_letters"):
        assert summary.tick(59.0) is None
        line = summary.tick(60.0)
        assert summary.tick(200.0) is None  # nothing new: no line
    assert line == "12 readings dead-lettered in the last minute: out_of_range:sinr_db ×9, too_old:ts ×3"
    assert [r.getMessage() for r in caplog.records] == [line]
