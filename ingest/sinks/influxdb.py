"""The InfluxDB sink: line protocol over the v1-compatible ``/write`` endpoint.

Status handling follows Telegraf's InfluxDB output: a 413 splits the body in halves; a 400/422
(parse error, field type conflict, partial write) keeps the valid points (InfluxDB already wrote
them) and the body is bisected, rewriting the halves (idempotent) until the refused points are
isolated and stored as dead letters; 429/5xx and connection errors raise
:class:`ingest.errors.RetryableError` carrying ``Retry-After`` so the batch is spooled. A row that
line protocol cannot carry at all: a reading or status becomes a dead letter at encoding; any
other row raises :class:`ingest.errors.PermanentError` before anything is posted.
"""

from __future__ import annotations

import logging
import re
import time

import httpx

from ingest.errors import ConfigError, PermanentError, RetryableError
from ingest.model import DeadLetter, WriteBatch, WriteResult
from ingest.points import dead_letter_line, encode_batch, truncate_raw
from settings.ingest import InfluxSinkSettings, SinkSettings
from storage.influx_http import (
    InfluxAuthError,
    InfluxDatabaseMissing,
    InfluxError,
    InfluxHTTP,
    InfluxQueryError,
    InfluxRejectedError,
    InfluxRetryableError,
    InfluxTooLargeError,
    quote_ident,
    use_gzip,
)
from storage.ledger_snapshot import LedgerSnapshot
from storage.lineprotocol import LineProtocolError
from storage.schema import LOSS_LEDGER

log = logging.getLogger(__name__)
_TAG_RE = re.compile(r"[, ](gw|park)=([A-Za-z0-9_.\-]+)")


class InfluxSink:
    """Writes batches to InfluxDB 1.x/2.x/3.x through ``/write``.

    Args:
        settings: ``[sink]`` with ``type = "influxdb"``.
        src: this ingester's name, the ``src`` tag of its dead letters.
        transport: an httpx transport (tests).
    """

    def __init__(
        self, settings: SinkSettings, *, src: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not isinstance(settings, InfluxSinkSettings):
            raise ConfigError('sink: InfluxSink needs [sink] type = "influxdb"')
        self._s = settings
        self._src = src
        self._http = InfluxHTTP(
            url=settings.url,
            token=settings.token,
            username=settings.username,
            password=settings.password,
            timeout_s=settings.timeout_s,
            gzip=use_gzip(settings.gzip, settings.url),
            transport=transport,
        )
        self._last_ns = 0

    async def _create_database(self) -> None:
        s = self._s
        await self._http.query(f"CREATE DATABASE {quote_ident(s.database)}")
        if s.retention_policy:
            duration = f"{s.retention_days}d" if s.retention_days else "INF"
            rp, db = quote_ident(s.retention_policy), quote_ident(s.database)
            try:
                await self._http.query(
                    f"CREATE RETENTION POLICY {rp} ON {db} DURATION {duration} REPLICATION 1"
                )
            except InfluxQueryError as exc:
                if "already exists" not in str(exc):
                    raise
                await self._http.query(f"ALTER RETENTION POLICY {rp} ON {db} DURATION {duration}")

    async def start(self) -> list[LedgerSnapshot]:
        try:
            if self._s.create_database:
                await self._create_database()
            rp = f"{quote_ident(self._s.retention_policy)}." if self._s.retention_policy else ""
            results = await self._http.query(
                "SELECT last(received) AS received, last(missing) AS missing, last(duplicated) AS duplicated,"
                f" last(late) AS late, last(last_seq) AS last_seq, last(restarts) AS restarts"
                f" FROM {rp}{LOSS_LEDGER} GROUP BY gw, park, ingester",
                database=self._s.database,
                method="GET",
            )
        except InfluxAuthError as exc:
            raise ConfigError(f"sink: {exc}") from exc
        except InfluxRetryableError as exc:
            raise RetryableError(str(exc), exc.retry_after_s) from exc
        except InfluxError as exc:
            raise ConfigError(f"sink: {exc}") from exc
        out = []
        for series in results[0].get("series", []) if results else []:
            tags = series.get("tags", {})
            cols = series["columns"]
            row = dict(zip(cols, series["values"][0], strict=True))
            out.append(
                LedgerSnapshot(
                    park=tags.get("park", ""),
                    gw=tags.get("gw", ""),
                    received=int(row["received"] or 0),
                    missing=int(row["missing"] or 0),
                    duplicated=int(row["duplicated"] or 0),
                    late=int(row["late"] or 0),
                    last_seq=int(row["last_seq"] if row["last_seq"] is not None else -1),
                    ingester=tags.get("ingester") or None,
                    restarts=int(row.get("restarts") or 0),
                )
            )
        return out

    def _now_ns(self) -> int:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return now

    async def _post(self, lines: list[str], refused: list[DeadLetter]) -> None:
        body = "\n".join(lines).encode()
        try:
            await self._http.write(self._s.database, body, rp=self._s.retention_policy)
            return
        except InfluxDatabaseMissing:
            if not self._s.create_database:
                raise
            await self._create_database()
            await self._http.write(self._s.database, body, rp=self._s.retention_policy)
            return
        except InfluxTooLargeError:
            if len(lines) == 1:
                refused.append(self._refused(lines[0], "point larger than the server's max-body-size"))
                return
        except InfluxRejectedError as exc:
            if len(lines) == 1:
                refused.append(self._refused(lines[0], str(exc)))
                return
        half = len(lines) // 2
        await self._post(lines[:half], refused)
        await self._post(lines[half:], refused)

    def _refused(self, line: str, reason: str) -> DeadLetter:
        found = dict(_TAG_RE.findall(line.split(" ", 1)[0]))
        self._last_ns = ns = max(time.time_ns(), self._last_ns + 1)
        return DeadLetter(
            ts_ns=ns,
            topic="influxdb",
            park=found.get("park", ""),
            gw=found.get("gw", ""),
            reason=f"refused by InfluxDB: {reason}"[:300],
            raw=truncate_raw(line.encode()),
            src=self._src,
        )

    async def write(self, batch: WriteBatch) -> WriteResult:
        try:
            enc = encode_batch(batch, src=self._src, now_ns=self._now_ns())
        except LineProtocolError as exc:
            # Nothing was posted yet: the caller narrows the batch down to the row at fault.
            raise PermanentError(f"not storable in InfluxDB: {exc}") from exc
        self._last_ns += len(enc.rejected)
        refused: list[DeadLetter] = []
        step = self._s.max_lines_per_write
        try:
            for i in range(0, len(enc.lines), step):
                await self._post(enc.lines[i : i + step], refused)
            if refused:
                log.warning("InfluxDB refused %d point(s); stored as dead letters", len(refused))
                lost: list[DeadLetter] = []
                await self._post([dead_letter_line(d) for d in refused], lost)
                if lost:
                    log.error("InfluxDB refused %d dead-letter point(s) too; they are lost", len(lost))
        except InfluxRetryableError as exc:
            raise RetryableError(str(exc), exc.retry_after_s) from exc
        except InfluxError as exc:
            raise RetryableError(f"InfluxDB write failed: {exc}") from exc
        return WriteResult(readings=enc.readings, rejected=[*enc.rejected, *refused])

    async def aclose(self) -> None:
        await self._http.aclose()
