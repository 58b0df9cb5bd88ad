"""Survey files uploaded through the API, run by a running ingester.

``POST /api/v1/imports`` queues the file in the registry (:mod:`storage.import_queue`); every
ingester with a ``registry_path`` polls that queue, and the one that claims a job feeds it through
:class:`~ingest.imports.SurveyImport`, the same path as ``parkwatch import``: the same validation,
enrichment, dead letters and point identity, through this ingester's own sink (so a DuckDB file
needs no second writer) and its write slots (so live batches and the import take turns).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Final

from ingest.errors import RetryableError
from ingest.imports import SurveyImport
from ingest.service import Ingester
from storage.import_queue import ImportJob, ImportQueue
from surveys.convert import convert_rows
from surveys.formats import SurveyFormatError, read_rows
from surveys.mappings import MappingError, load_mapping

log = logging.getLogger("parkwatch.ingest.imports")

HEARTBEAT_S: Final = 2.0
"""Progress (rows done) is written to the job at most this often."""


class ImportWorker:
    """Claims uploaded survey files from the registry and imports them, one at a time.

    Args:
        ing: the running ingester (its sink started).
    """

    def __init__(self, ing: Ingester) -> None:
        self.ing = ing
        self.worker = f"{ing.src}-{os.getpid()}"
        self.queue: ImportQueue | None = None

    async def run(self) -> None:
        """Poll the queue until cancelled."""
        poll_s = self.ing.settings.ingest.import_poll_s
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:  # supervised loop: a failure is logged, counted and retried
                self.ing.metrics.loop_errors["imports"] += 1
                log.exception("running an uploaded import failed; trying again in %.0f s", poll_s)
            await asyncio.sleep(poll_s)

    async def run_once(self) -> bool:
        """Claim and run one queued job; False when there was none."""
        if self.queue is None:
            path = self.ing.settings.ingest.registry_path
            if not path or not await asyncio.to_thread(Path(path).exists):
                return False
            self.queue = await asyncio.to_thread(ImportQueue, path)
        claimed = await asyncio.to_thread(self.queue.claim, self.worker)
        if claimed is None:
            return False
        job, data = claimed
        await self._run(self.queue, job, data)
        return True

    async def _run(self, queue: ImportQueue, job: ImportJob, data: bytes) -> None:
        log.info("import %s: %s (%d rows) into park %s", job.id, job.filename, job.rows, job.park)
        try:
            mapping = load_mapping(job.mapping)
            rows = list(read_rows(data, job.format, delimiter=mapping.delimiter))  # type: ignore[arg-type]
        except (MappingError, SurveyFormatError) as exc:
            await asyncio.to_thread(queue.fail, job.id, self.worker, str(exc), retry=False)
            log.warning("import %s failed: %s", job.id, exc)
            return
        survey = SurveyImport(self.ing, park=job.park, gateway=job.gateway, dry_run=job.dry_run)
        beat = [time.monotonic()]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - beat[0] >= HEARTBEAT_S:
                beat[0] = now
                queue.heartbeat(job.id, self.worker, done)

        try:
            items = convert_rows(rows, mapping, device=job.device, timezone=job.timezone)
            report = await survey.feed(items, progress=progress)
        except RetryableError as exc:
            why = (
                f"the store was unavailable after {survey.report.stored} readings ({exc}); "
                "the import is tried again (points already stored are overwritten, not duplicated)"
            )
            status = await asyncio.to_thread(queue.fail, job.id, self.worker, why, retry=True)
            log.warning("import %s: %s; now %s", job.id, why, status)
            return
        except MappingError as exc:
            await asyncio.to_thread(queue.fail, job.id, self.worker, str(exc), retry=False)
            log.warning("import %s failed: %s", job.id, exc)
            return
        await asyncio.to_thread(queue.finish, job.id, self.worker, report.to_dict())
        refused = sum(report.refused.values())
        log.info(
            "import %s done: %d rows, %d stored, %d refused", job.id, report.rows, report.stored, refused
        )
