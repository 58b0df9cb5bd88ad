"""Uploaded survey files waiting for an ingester, in the registry's SQLite file.

``POST /api/v1/imports`` stores the uploaded file here as a queued job; a running ingester claims
it, feeds it through its own validation, enrichment and sink (exactly as ``parkwatch import``
does) and records the report. ``api`` and ``ingest`` never import each other: this table is what
they share, like the parks and gateway sites of :mod:`storage.places`. Several ingesters may poll
the same file: a claim is one conditional ``UPDATE`` so exactly one of them gets each job, and a job
whose ingester stopped answering (no heartbeat for :data:`STALE_AFTER_MS`) is queued again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

JobStatus = Literal["queued", "running", "done", "failed"]

STALE_AFTER_MS: Final = 10 * 60_000
"""A running job with no heartbeat for this long is queued again (its ingester stopped)."""

MAX_ATTEMPTS: Final = 5
"""A job whose store kept failing is given up after this many attempts."""

_SCHEMA: Final = """CREATE TABLE IF NOT EXISTS import_jobs (
    id TEXT PRIMARY KEY, park TEXT NOT NULL, gateway TEXT NOT NULL, device TEXT NOT NULL,
    mapping TEXT NOT NULL, format TEXT NOT NULL, timezone TEXT NOT NULL, filename TEXT NOT NULL,
    sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL, rows INTEGER NOT NULL, dry_run INTEGER NOT NULL,
    submitted_by TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT NOT NULL DEFAULT '', rows_done INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL, started_ms INTEGER, heartbeat_ms INTEGER, finished_ms INTEGER,
    report TEXT, error TEXT NOT NULL DEFAULT '', data BLOB)"""

_COLUMNS: Final = (
    "id, park, gateway, device, mapping, format, timezone, filename, sha256, size_bytes, rows, dry_run, "
    "submitted_by, status, attempts, worker, rows_done, created_ms, started_ms, heartbeat_ms, "
    "finished_ms, report, error"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportJob:
    """One uploaded survey file and what became of it (the file's bytes are kept apart)."""

    id: str
    park: str
    gateway: str
    device: str
    mapping: str
    format: str
    timezone: str
    filename: str
    sha256: str
    size_bytes: int
    rows: int
    dry_run: bool
    submitted_by: str
    status: JobStatus
    attempts: int = 0
    worker: str = ""
    rows_done: int = 0
    created_ms: int = 0
    started_ms: int | None = None
    heartbeat_ms: int | None = None
    finished_ms: int | None = None
    report: dict[str, Any] | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id,
            "park": self.park,
            "gateway": self.gateway,
            "device": self.device,
            "mapping": self.mapping,
            "format": self.format,
            "timezone": self.timezone,
            "filename": self.filename,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "dry_run": self.dry_run,
            "submitted_by": self.submitted_by,
            "status": self.status,
            "attempts": self.attempts,
            "rows_done": self.rows_done,
            "created_ms": self.created_ms,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "report": self.report,
            "error": self.error,
        }


def _job(row: Sequence[Any]) -> ImportJob:
    (id_, park, gw, device, mapping, fmt, tz, filename, sha, size, rows, dry, by, status, attempts) = row[:15]
    worker, done, created, started, beat, finished, report, error = row[15:]
    return ImportJob(
        id=id_,
        park=park,
        gateway=gw,
        device=device,
        mapping=mapping,
        format=fmt,
        timezone=tz,
        filename=filename,
        sha256=sha,
        size_bytes=size,
        rows=rows,
        dry_run=bool(dry),
        submitted_by=by,
        status=status,
        attempts=attempts,
        worker=worker,
        rows_done=done,
        created_ms=created,
        started_ms=started,
        heartbeat_ms=beat,
        finished_ms=finished,
        report=None if report is None else json.loads(report),
        error=error,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class ImportQueue:
    """The ``import_jobs`` table of one SQLite file (the registry's).

    Args:
        path: the registry file; created when missing (it is the API's, which made it ``0600``).
        clock_ms: the wall clock in milliseconds (tests move it).
    """

    def __init__(self, path: str | Path, *, clock_ms: Any = _now_ms) -> None:
        self.path = str(path)
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def submit(
        self,
        data: bytes,
        *,
        park: str,
        gateway: str,
        device: str,
        mapping: str,
        fmt: str,
        timezone: str,
        filename: str,
        rows: int,
        dry_run: bool,
        submitted_by: str,
    ) -> ImportJob:
        """Queue an uploaded file; returns the job."""
        job = ImportJob(
            id=f"imp-{secrets.token_hex(6)}",
            park=park,
            gateway=gateway,
            device=device,
            mapping=mapping,
            format=fmt,
            timezone=timezone,
            filename=filename,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            rows=rows,
            dry_run=dry_run,
            submitted_by=submitted_by,
            status="queued",
            created_ms=self._clock_ms(),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO import_jobs (id, park, gateway, device, mapping, format, timezone, filename, "
                "sha256, size_bytes, rows, dry_run, submitted_by, status, created_ms, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    job.id,
                    park,
                    gateway,
                    device,
                    mapping,
                    fmt,
                    timezone,
                    filename,
                    job.sha256,
                    job.size_bytes,
                    rows,
                    int(dry_run),
                    submitted_by,
                    job.created_ms,
                    data,
                ),
            )
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM import_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self, parks: Sequence[str] | None = None, *, limit: int = 100) -> list[ImportJob]:
        """The newest jobs first, of ``parks`` (None: every park)."""
        sql, args = f"SELECT {_COLUMNS} FROM import_jobs", list[str]()
        if parks is not None:
            if not parks:
                return []
            sql += f" WHERE park IN ({', '.join('?' * len(parks))})"
            args.extend(parks)
        sql += " ORDER BY created_ms DESC, id LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def claim(self, worker: str) -> tuple[ImportJob, bytes] | None:
        """Take the oldest queued job (or one whose worker went silent) for ``worker``; None if none."""
        now = self._clock_ms()
        with self._lock:
            self._db.execute(
                "UPDATE import_jobs SET status = 'queued', worker = '' "
                "WHERE status = 'running' AND heartbeat_ms < ?",
                (now - STALE_AFTER_MS,),
            )
            row = self._db.execute(
                "SELECT id FROM import_jobs WHERE status = 'queued' ORDER BY created_ms, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            took = self._db.execute(
                "UPDATE import_jobs SET status = 'running', worker = ?, attempts = attempts + 1, "
                "started_ms = ?, heartbeat_ms = ?, rows_done = 0 WHERE id = ? AND status = 'queued'",
                (worker, now, now, row[0]),
            ).rowcount
            if took != 1:  # another ingester was quicker
                return None
            found = self._db.execute(
                f"SELECT {_COLUMNS}, data FROM import_jobs WHERE id = ?", (row[0],)
            ).fetchone()
        return _job(found[:-1]), bytes(found[-1])

    def heartbeat(self, job_id: str, worker: str, rows_done: int) -> None:
        """Record progress (and that ``worker`` is alive)."""
        with self._lock:
            self._db.execute(
                "UPDATE import_jobs SET rows_done = ?, heartbeat_ms = ? WHERE id = ? AND worker = ?",
                (rows_done, self._clock_ms(), job_id, worker),
            )

    def finish(self, job_id: str, worker: str, report: dict[str, Any]) -> None:
        """The job is done: keep its report, drop the file's bytes."""
        with self._lock:
            self._db.execute(
                "UPDATE import_jobs SET status = 'done', finished_ms = ?, report = ?, rows_done = rows, "
                "error = '', data = NULL WHERE id = ? AND worker = ?",
                (self._clock_ms(), json.dumps(report), job_id, worker),
            )

    def fail(self, job_id: str, worker: str, error: str, *, retry: bool) -> JobStatus:
        """The job failed; with ``retry`` (the store was down) it is queued again unless it used up
        :data:`MAX_ATTEMPTS`. Returns the job's new status."""
        with self._lock:
            row = self._db.execute(
                "SELECT attempts FROM import_jobs WHERE id = ? AND worker = ?", (job_id, worker)
            ).fetchone()
            if row is None:
                return "failed"
            status: JobStatus = "queued" if retry and row[0] < MAX_ATTEMPTS else "failed"
            finished = None if status == "queued" else self._clock_ms()
            self._db.execute(
                "UPDATE import_jobs SET status = ?, worker = '', error = ?, finished_ms = ?, "
                "data = CASE WHEN ? = 'failed' THEN NULL ELSE data END WHERE id = ?",
                (status, error[:1000], finished, status, job_id),
            )
        return status
