"""Alarm rules, alarm instances, their event journal and notification deliveries, durably.

The tables live in the API registry's SQLite file, which every deployment has whatever its
time-series backend (DuckDB or InfluxDB), so alarm state survives restarts on both. The store
only moves rows: the lifecycle is :mod:`analytics.alarm_lifecycle`, the evaluation
:mod:`api.alarms.engine`. One connection behind a lock (WAL journal); several processes may open
the file, and one evaluator at a time holds the ``lease``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

from analytics.alarm_lifecycle import Instance

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS alarm_rules (
        id TEXT PRIMARY KEY, body TEXT NOT NULL, enabled INTEGER NOT NULL, origin TEXT NOT NULL,
        updated_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alarm_instances (
        id INTEGER PRIMARY KEY AUTOINCREMENT, closed INTEGER NOT NULL, body TEXT NOT NULL,
        rule_id TEXT NOT NULL, park TEXT NOT NULL, source TEXT NOT NULL, updated_ms INTEGER NOT NULL)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS alarm_open ON alarm_instances (rule_id, park, source)
        WHERE closed = 0""",
    """CREATE TABLE IF NOT EXISTS alarm_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id INTEGER NOT NULL, rule_id TEXT NOT NULL,
        park TEXT NOT NULL, source TEXT NOT NULL, priority TEXT NOT NULL, kind TEXT NOT NULL,
        state TEXT NOT NULL, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alarm_events_at ON alarm_events (park, at_ms)",
    """CREATE TABLE IF NOT EXISTS alarm_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, target TEXT NOT NULL,
        alarm_ids TEXT NOT NULL, attempt INTEGER NOT NULL, ok INTEGER NOT NULL, detail TEXT NOT NULL,
        at_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alarm_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_ms INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS alarm_memory (
        rule_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (rule_id, key))""",
    """CREATE TABLE IF NOT EXISTS alarm_lease (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL)""",
)

_INSTANCE_FIELDS: Final = frozenset(f.name for f in fields(Instance))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRule:
    """A rule as stored: its id, body (the rule's own fields), switch and where it came from."""

    id: str
    body: dict[str, Any]
    enabled: bool
    origin: str
    """``config`` (seeded from the config file) or ``api`` (created through the API or CLI)."""
    updated_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlarm:
    id: int
    instance: Instance
    updated_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmEvent:
    """One line of the journal: a state change of an alarm (what the KPIs count)."""

    alarm_id: int
    rule_id: str
    park: str
    source: str
    priority: str
    kind: str
    state: str
    at_ms: int
    actor: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    channel: str
    target: str
    alarm_ids: tuple[int, ...]
    attempt: int
    ok: bool
    detail: str
    at_ms: int


def _instance(body: str) -> Instance:
    data = {k: v for k, v in json.loads(body).items() if k in _INSTANCE_FIELDS}
    return Instance(**data)


class AlarmStore:
    """SQLite-backed alarm store; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # WAL with NORMAL: a commit survives a crash of the process; only a power cut may lose the
        # last evaluation's changes, which the next evaluation makes again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        for stmt in _SCHEMA:
            self._db.execute(stmt)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``): a read-modify-write of an alarm is atomic
        across processes sharing the file."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- rules ----------------------------------------------------------------------------------

    def rules(self) -> list[StoredRule]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body, enabled, origin, updated_ms FROM alarm_rules ORDER BY id"
            ).fetchall()
        return [
            StoredRule(id=r[0], body=json.loads(r[1]), enabled=bool(r[2]), origin=r[3], updated_ms=r[4])
            for r in rows
        ]

    def rule(self, rule_id: str) -> StoredRule | None:
        return next((r for r in self.rules() if r.id == rule_id), None)

    def put_rule(
        self, rule_id: str, body: Mapping[str, Any], *, enabled: bool, origin: str, now_ms: int
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO alarm_rules VALUES (?, ?, ?, ?, ?)",
                (rule_id, json.dumps(dict(body), sort_keys=True), int(enabled), origin, now_ms),
            )

    def seed_rule(self, rule_id: str, body: Mapping[str, Any], *, enabled: bool, now_ms: int) -> bool:
        """Store a config-file rule unless a rule with its id exists (edits made through the API win).

        Returns whether it was stored.
        """
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO alarm_rules VALUES (?, ?, ?, 'config', ?)",
                (rule_id, json.dumps(dict(body), sort_keys=True), int(enabled), now_ms),
            )
            return cur.rowcount == 1

    def delete_rule(self, rule_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM alarm_rules WHERE id = ?", (rule_id,)).rowcount == 1

    # -- instances ------------------------------------------------------------------------------

    def open_alarm(self, rule_id: str, park: str, source: str) -> StoredAlarm | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, body, updated_ms FROM alarm_instances "
                "WHERE closed = 0 AND rule_id = ? AND park = ? AND source = ?",
                (rule_id, park, source),
            ).fetchone()
        return None if row is None else StoredAlarm(id=row[0], instance=_instance(row[1]), updated_ms=row[2])

    def alarm(self, alarm_id: int) -> StoredAlarm | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, body, updated_ms FROM alarm_instances WHERE id = ?", (alarm_id,)
            ).fetchone()
        return None if row is None else StoredAlarm(id=row[0], instance=_instance(row[1]), updated_ms=row[2])

    def alarms(self, *, open_only: bool = False, since_ms: int | None = None) -> list[StoredAlarm]:
        """Open alarms, and (unless ``open_only``) closed ones updated since ``since_ms``."""
        sql = "SELECT id, body, updated_ms FROM alarm_instances WHERE closed = 0"
        params: list[Any] = []
        if not open_only:
            sql += " OR updated_ms >= ?"
            params.append(since_ms or 0)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC", params).fetchall()
        return [StoredAlarm(id=r[0], instance=_instance(r[1]), updated_ms=r[2]) for r in rows]

    def insert_alarm(self, inst: Instance, now_ms: int) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO alarm_instances (closed, body, rule_id, park, source, updated_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(inst.closed), json.dumps(asdict(inst)), inst.rule_id, inst.park, inst.source, now_ms),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def update_alarm(self, alarm_id: int, inst: Instance, now_ms: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE alarm_instances SET closed = ?, body = ?, updated_ms = ? WHERE id = ?",
                (int(inst.closed), json.dumps(asdict(inst)), now_ms, alarm_id),
            )

    # -- journal --------------------------------------------------------------------------------

    def log_event(self, ev: AlarmEvent) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO alarm_events (alarm_id, rule_id, park, source, priority, kind, state, at_ms, "
                "actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ev.alarm_id,
                    ev.rule_id,
                    ev.park,
                    ev.source,
                    ev.priority,
                    ev.kind,
                    ev.state,
                    ev.at_ms,
                    ev.actor,
                    ev.detail,
                ),
            )

    def events(self, *, start_ms: int, end_ms: int, kind: str | None = None) -> list[AlarmEvent]:
        sql = (
            "SELECT alarm_id, rule_id, park, source, priority, kind, state, at_ms, actor, detail "
            "FROM alarm_events WHERE at_ms >= ? AND at_ms < ?"
        )
        params: list[Any] = [start_ms, end_ms]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY at_ms, id", params).fetchall()
        names = (
            "alarm_id",
            "rule_id",
            "park",
            "source",
            "priority",
            "kind",
            "state",
            "at_ms",
            "actor",
            "detail",
        )
        return [AlarmEvent(**dict(zip(names, r, strict=True))) for r in rows]

    # -- deliveries -----------------------------------------------------------------------------

    def log_delivery(self, d: Delivery) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO alarm_deliveries (channel, target, alarm_ids, attempt, ok, detail, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d.channel, d.target, json.dumps(list(d.alarm_ids)), d.attempt, int(d.ok), d.detail, d.at_ms),
            )

    def deliveries(self, limit: int = 100, offset: int = 0) -> list[Delivery]:
        """The delivery log, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT channel, target, alarm_ids, attempt, ok, detail, at_ms FROM alarm_deliveries "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [
            Delivery(
                channel=r[0],
                target=r[1],
                alarm_ids=tuple(json.loads(r[2])),
                attempt=r[3],
                ok=bool(r[4]),
                detail=r[5],
                at_ms=r[6],
            )
            for r in rows
        ]

    # -- outbox: state changes waiting to be notified ---------------------------------------------

    def enqueue(self, body: Mapping[str, Any], now_ms: int) -> None:
        """Keep a state change for the notifier (whichever replica holds the lease sends it)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO alarm_outbox (body, created_ms) VALUES (?, ?)", (json.dumps(dict(body)), now_ms)
            )

    def pending(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM alarm_outbox WHERE done = 0 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def mark_done(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("UPDATE alarm_outbox SET done = 1 WHERE id = ?", [(i,) for i in ids])

    def delivery_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM alarm_deliveries").fetchone()[0])

    # -- rule memory and the evaluator's lease --------------------------------------------------

    def memory(self, rule_id: str, key: str) -> Any:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM alarm_memory WHERE rule_id = ? AND key = ?", (rule_id, key)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def remember(self, rule_id: str, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO alarm_memory VALUES (?, ?, ?)", (rule_id, key, json.dumps(value))
            )

    def take_lease(self, name: str, holder: str, *, now_ms: int, ttl_ms: int) -> bool:
        """Hold the lease ``name`` until ``now_ms + ttl_ms`` unless another holder has it now.

        API replicas share the file; only the lease holder evaluates rules and sends
        notifications, so a replica set raises each alarm (and sends each e-mail) once.
        """
        with self.transaction():
            row = self._db.execute(
                "SELECT holder, until_ms FROM alarm_lease WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now_ms:
                return False
            self._db.execute(
                "INSERT OR REPLACE INTO alarm_lease VALUES (?, ?, ?)", (name, holder, now_ms + ttl_ms)
            )
            return True
