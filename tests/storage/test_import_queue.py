"""The upload queue shared by the API (submits) and ingesters (claim, report)."""

from __future__ import annotations

from pathlib import Path

from storage.import_queue import MAX_ATTEMPTS, STALE_AFTER_MS, ImportQueue


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def _submit(q: ImportQueue, data: bytes = b"lat,lon\n1,2\n") -> str:
    job = q.submit(
        data,
        park="p1",
        gateway="import",
        device="",
        mapping="generic",
        fmt="csv",
        timezone="",
        filename="a.csv",
        rows=1,
        dry_run=False,
        submitted_by="planner",
    )
    return job.id


def test_each_job_is_claimed_by_exactly_one_ingester(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    api, one, two = ImportQueue(path), ImportQueue(path), ImportQueue(path)
    first, second = _submit(api, b"first"), _submit(api, b"second")
    got = [one.claim("ing-1"), two.claim("ing-2"), one.claim("ing-1"), two.claim("ing-2")]
    claimed = [c for c in got if c is not None]
    assert sorted(job.id for job, _ in claimed) == sorted([first, second])
    assert {data for _, data in claimed} == {b"first", b"second"}
    assert {api.get(j).status for j in (first, second)} == {"running"}  # type: ignore[union-attr]


def test_done_keeps_the_report_and_drops_the_bytes(tmp_path: Path) -> None:
    q = ImportQueue(tmp_path / "r.sqlite")
    job_id = _submit(q)
    assert q.claim("w") is not None
    q.heartbeat(job_id, "w", 1)
    q.finish(job_id, "w", {"stored": 1})
    job = q.get(job_id)
    assert job is not None and job.status == "done" and job.report == {"stored": 1}
    assert q._db.execute("SELECT data FROM import_jobs").fetchone() == (None,)
    assert q.claim("w") is None


def test_a_silent_worker_loses_its_job_and_retries_are_bounded(tmp_path: Path) -> None:
    clock = Clock()
    q = ImportQueue(tmp_path / "r.sqlite", clock_ms=clock)
    job_id = _submit(q)
    assert q.claim("dead") is not None
    assert q.claim("alive") is None  # still within its heartbeat
    clock.ms += STALE_AFTER_MS + 1
    claimed = q.claim("alive")
    assert claimed is not None and claimed[0].attempts == 2
    q.finish(job_id, "dead", {"stored": 99})  # the old worker's late answer is ignored
    assert q.get(job_id).status == "running"  # type: ignore[union-attr]
    statuses = [q.fail(job_id, "alive", "store down", retry=True)]
    while statuses[-1] == "queued":
        assert q.claim("alive") is not None
        statuses.append(q.fail(job_id, "alive", "store down", retry=True))
    assert statuses[-1] == "failed" and len(statuses) == MAX_ATTEMPTS - 1
    job = q.get(job_id)
    assert job is not None and job.error == "store down" and job.attempts == MAX_ATTEMPTS


def test_jobs_are_listed_newest_first_per_park(tmp_path: Path) -> None:
    clock = Clock()
    q = ImportQueue(tmp_path / "r.sqlite", clock_ms=clock)
    ids = []
    for _ in range(3):
        clock.ms += 1
        ids.append(_submit(q))
    assert [j.id for j in q.jobs(["p1"])] == ids[::-1]
    assert q.jobs(["other"]) == [] and q.jobs([]) == []
