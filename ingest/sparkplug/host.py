"""The ingester as a Sparkplug host application: births, data and deaths into the write batch.

:meth:`SparkplugHost.handle` turns one received message into contract readings, gateway
statuses and dead letters inside the ingester's write batch, so a Sparkplug message is
acknowledged (QoS 1) only after that batch is durably written, like a contract batch. The host's
own STATE is :mod:`ingest.sparkplug.state`; rebirth requests are :mod:`ingest.sparkplug.rebirth`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from contract.ids import is_valid_id
from contract.limits import MAX_FUTURE_MS
from contract.messages import Status
from ingest.enrich import CellLocator
from ingest.ledger import LossLedger
from ingest.metrics import Metrics
from ingest.model import StatusRow, WriteBatch
from ingest.mqtt import Message
from ingest.sparkplug.errors import SparkplugError
from ingest.sparkplug.mapping import Mapper, NodeMapping, Sample
from ingest.sparkplug.parts import DeadFn, PartBuilder
from ingest.sparkplug.payload import BDSEQ_METRIC, decode, metric_value, property_text
from ingest.sparkplug.rebirth import Rebirths
from ingest.sparkplug.session import MetricDef, NodeSession, SeqResult
from ingest.sparkplug.sparkplug_b_pb2 import Payload
from ingest.sparkplug.state import HostState, Publish
from ingest.sparkplug.topics import SparkplugTopic, StateTopic, parse_topic, subscriptions
from settings.ingest import SparkplugSettings

log = logging.getLogger(__name__)

CONTROL_PREFIXES: Final = ("Node Control/", "Device Control/")
"""Metrics that are commands to the node, not measurements: not stored."""
ONLINE_FIELD: Final = "online"
"""The generic field that records a device's birth (true) and death (false)."""
MAX_SESSIONS: Final = 100_000


class SparkplugHost:
    """Sparkplug B intake for one ingester.

    Args:
        settings: the ``[sparkplug]`` section.
        host_id: this host application's id (STATE topic).
        metrics: the ingester's metrics (``sparkplug`` events, dead letters).
        ledger: the loss ledger that the unwrapped ``seq`` numbers feed.
        locator: H3 cells of the readings (the gateway's position).
        dead: the ingester's dead-letter maker.
        max_age_ms: oldest reading accepted (the contract decoder's clock window).
        unknown: why a park/gateway is refused ("" when it is not): the ingester's
            ``refuse_unknown`` check against the registry.
        now_ms, monotonic: clocks (injectable for tests).
    """

    def __init__(
        self,
        settings: SparkplugSettings,
        *,
        host_id: str,
        metrics: Metrics,
        ledger: LossLedger,
        locator: CellLocator,
        dead: DeadFn,
        max_age_ms: int | None,
        unknown: Callable[[str, str], str] = lambda _park, _gw: "",
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.host_id = host_id
        self.metrics = metrics
        self.ledger = ledger
        self.locator = locator
        self._dead = dead
        self._max_age_ms = max_age_ms
        self._unknown = unknown
        self.mapper = Mapper(settings.nodes)
        self.sessions: dict[tuple[str, str], NodeSession] = {}
        self.parts = PartBuilder(locator=locator, dead=dead, max_age_ms=max_age_ms)
        self.state = HostState(host_id, now_ms)
        self.rebirth = Rebirths(settings.rebirth_interval_s, metrics.sparkplug, now_ms, monotonic)

    # -- host application state and rebirth requests --

    def filters(self) -> list[str]:
        """The topic filters to subscribe to (QoS 1)."""
        return subscriptions(self.settings.groups)

    def will(self) -> tuple[str, bytes]:
        """The Last Will of the first connection: this host offline."""
        return self.state.will()

    def bind(self, publish: Publish, set_will: Callable[[str, bytes], None]) -> None:
        """Connect to the MQTT client: how to publish, and how to set the next connection's will."""
        self.state.bind(publish, set_will)
        self.rebirth.bind(publish)

    def on_connected(self) -> None:
        """Publish this host online (see :class:`HostState`)."""
        self.state.on_connected()
        self.metrics.sparkplug["state_online_published"] += 1

    def publish_offline(self) -> bool:
        """A clean shutdown's offline state."""
        return self.state.publish_offline()

    def request_rebirth(self, group: str, edge_node: str, why: str) -> bool:
        """Ask an edge node for new births (rate-limited, see :class:`Rebirths`)."""
        return self.rebirth.request(group, edge_node, why)

    # -- intake --

    def handle(self, msg: Message, out: WriteBatch) -> int:
        """Take one message into ``out``; return the number of valid readings."""
        try:
            topic = parse_topic(msg.topic)
        except SparkplugError as exc:
            out.dead_letters.append(self._dead(msg, "", "", exc.reason, msg.payload, "topic", exc.key))
            return 0
        if isinstance(topic, StateTopic) or topic.type in ("NCMD", "DCMD"):
            # Host states (our own retained one included) and commands to nodes are not data.
            self.metrics.sparkplug[
                "ignored_" + ("STATE" if isinstance(topic, StateTopic) else topic.type)
            ] += 1
            return 0
        self.metrics.sparkplug[topic.type] += 1
        mapping = self.mapper.find(topic.group, topic.edge_node)
        if mapping is None:
            reason = (
                f"sparkplug edge node {topic.group}/{topic.edge_node} is not mapped to a park: add a "
                f'[[sparkplug.nodes]] entry with group = "{topic.group}" and edge_node = '
                f'"{topic.edge_node}" (or "+") to the ingester settings'
            )
            out.dead_letters.append(
                self._dead(msg, "", "", reason, msg.payload, "sparkplug", "sparkplug_unmapped")
            )
            return 0
        park, gw = mapping.park, mapping.gateway
        if not is_valid_id(gw):
            reason = (
                f"sparkplug edge node id {topic.edge_node!r} is not a valid parkwatch gateway id; "
                "map it with an explicit gateway = ... in [[sparkplug.nodes]]"
            )
            out.dead_letters.append(
                self._dead(msg, park, "", reason, msg.payload, "sparkplug", "sparkplug_gateway")
            )
            return 0
        refused = self._unknown(park, gw)
        if refused:
            key = refused.partition(":")[0]
            out.dead_letters.append(self._dead(msg, park, gw, refused, msg.payload, key))
            return 0
        if msg.oversize_bytes:
            reason = f"payload of {msg.oversize_bytes} bytes exceeds the ingester's limit; publish smaller messages"
            out.dead_letters.append(self._dead(msg, park, gw, reason, msg.payload, "oversize"))
            return 0
        try:
            payload = decode(msg.payload)
            return self._take(msg, topic, mapping, payload, out)
        except SparkplugError as exc:
            out.dead_letters.append(self._dead(msg, park, gw, exc.reason, msg.payload, "sparkplug", exc.key))
            return 0

    def _session(self, topic: SparkplugTopic, gw: str) -> NodeSession:
        key = (topic.group, topic.edge_node)
        found = self.sessions.get(key)
        if found is None:
            if len(self.sessions) >= MAX_SESSIONS:
                raise SparkplugError(
                    f"more than {MAX_SESSIONS} sparkplug edge nodes; narrow [sparkplug] groups",
                    key="too_many_nodes",
                )
            # Continue the gateway's ledger numbering (resumed from the store after a restart):
            # starting again from 0 would read as a run of duplicates.
            found = self.sessions[key] = NodeSession(ext_seq=self.ledger.last_seq(gw))
        return found

    def _seq(self, payload: Payload) -> int:
        if not payload.HasField("seq") or payload.seq > 255:
            got = payload.seq if payload.HasField("seq") else "none"
            raise SparkplugError(f"seq must be 0-255 (got {got})", key="seq")
        return int(payload.seq)

    def _take(
        self, msg: Message, topic: SparkplugTopic, mapping: NodeMapping, payload: Payload, out: WriteBatch
    ) -> int:
        park, gw = mapping.park, mapping.gateway
        session = self._session(topic, gw)
        payload_ts = int(payload.timestamp) if payload.HasField("timestamp") else msg.received_ms
        samples: list[Sample] = []
        if topic.type == "NDEATH":
            return self._node_death(msg, topic, mapping, payload, session, payload_ts, out)
        seq = self._seq(payload)
        if topic.type == "NBIRTH":
            bd_seq = _bd_seq(payload)
            result = session.birth(seq, bd_seq)
            out.statuses.append(
                StatusRow(
                    ts_ms=self._status_ts(payload_ts, msg),
                    park=park,
                    gw=gw,
                    status=Status(v=1, gw=gw, state="online", ts=self._status_ts(payload_ts, msg)),
                )
            )
            samples = self._birth(msg, topic, "", payload, session, payload_ts, out)
        else:
            result = session.step(seq)
            if result.step == "unborn":
                self.request_rebirth(topic.group, topic.edge_node, f"{topic.type} before any NBIRTH")
                raise SparkplugError(
                    f"{topic.type} from {topic.group}/{topic.edge_node} before its NBIRTH: "
                    "metrics cannot be resolved; a rebirth was requested",
                    key="unborn",
                )
            if result.step == "gap":
                self.request_rebirth(
                    topic.group,
                    topic.edge_node,
                    f"seq gap: {result.missing} message(s) missing before seq {seq}",
                )
            if topic.type == "DBIRTH":
                session.device_birth(topic.device)
                samples = self._birth(msg, topic, topic.device, payload, session, payload_ts, out)
                samples.append(Sample(topic.device, ONLINE_FIELD, True, payload_ts))
            elif topic.type == "DDEATH":
                session.devices.discard(topic.device)
                samples = [Sample(topic.device, ONLINE_FIELD, False, payload_ts)]
            elif topic.device and topic.device not in session.devices:
                self.request_rebirth(topic.group, topic.edge_node, f"DDATA of unborn device {topic.device!r}")
                self._observe(park, gw, result)
                raise SparkplugError(
                    f"DDATA of device {topic.device!r} before its DBIRTH; a rebirth was requested",
                    key="unborn_device",
                )
            else:
                samples = self._data(msg, topic, payload, session, payload_ts, out)
        self._observe(park, gw, result)
        return self._store(msg, mapping, samples, payload, result, out)

    def _status_ts(self, ts_ms: int, msg: Message) -> int:
        """A status's time: the payload's within the contract's clock window, else the receipt's
        (readings get that window from the contract decoder; a status is built here)."""
        oldest = 0 if self._max_age_ms is None else msg.received_ms - self._max_age_ms
        return ts_ms if oldest <= ts_ms <= msg.received_ms + MAX_FUTURE_MS else msg.received_ms

    def _observe(self, park: str, gw: str, result: SeqResult) -> None:
        if result.ext_seq >= 0:
            self.ledger.observe(park, gw, result.ext_seq)

    def _node_death(
        self,
        msg: Message,
        topic: SparkplugTopic,
        mapping: NodeMapping,
        payload: Payload,
        session: NodeSession,
        ts_ms: int,
        out: WriteBatch,
    ) -> int:
        bd_seq = _bd_seq(payload)
        if session.bd_seq is not None and bd_seq is not None and bd_seq != session.bd_seq:
            # A death of an earlier session (its will, delivered late): the node is alive.
            self.metrics.sparkplug["stale_death"] += 1
            log.info(
                "ignored NDEATH of %s/%s with bdSeq %d: the current birth has bdSeq %d",
                topic.group,
                topic.edge_node,
                bd_seq,
                session.bd_seq,
            )
            return 0
        park, gw = mapping.park, mapping.gateway
        devices = session.death()
        status_ts = self._status_ts(ts_ms, msg)
        out.statuses.append(
            StatusRow(
                ts_ms=status_ts, park=park, gw=gw, status=Status(v=1, gw=gw, state="offline", ts=status_ts)
            )
        )
        samples = [Sample(d, ONLINE_FIELD, False, ts_ms) for d in sorted(devices)]
        return self._store(msg, mapping, samples, payload, SeqResult("next", -1), out)

    def _birth(
        self,
        msg: Message,
        topic: SparkplugTopic,
        device: str,
        payload: Payload,
        session: NodeSession,
        payload_ts: int,
        out: WriteBatch,
    ) -> list[Sample]:
        samples: list[Sample] = []
        for m in payload.metrics:
            if not m.name or not m.HasField("datatype"):
                why = "without a name" if not m.name else f"{m.name!r} without a datatype"
                self._metric_dead(
                    msg, topic, f"{topic.type} metric {why}: births must declare both", "birth_metric", out
                )
                continue
            definition = MetricDef(name=m.name, datatype=m.datatype, unit=property_text(m, "engUnit"))
            clash = session.define(device, int(m.alias) if m.HasField("alias") else None, definition)
            if clash:
                self._metric_dead(msg, topic, clash, "alias_clash", out)
            samples.extend(self._sample(msg, topic, device, definition, m, payload_ts, out))
        return samples

    def _data(
        self,
        msg: Message,
        topic: SparkplugTopic,
        payload: Payload,
        session: NodeSession,
        payload_ts: int,
        out: WriteBatch,
    ) -> list[Sample]:
        samples: list[Sample] = []
        unknown: list[str] = []
        for m in payload.metrics:
            alias = int(m.alias) if m.HasField("alias") else None
            definition = session.resolve(topic.device, m.name, alias)
            if definition is None:
                what = f"metric {m.name!r}" if m.name else f"alias {alias}"
                unknown.append(what)
                self._metric_dead(
                    msg,
                    topic,
                    f"{what} is not in the birth certificate; a rebirth was requested",
                    "unknown_metric",
                    out,
                )
                continue
            samples.extend(self._sample(msg, topic, topic.device, definition, m, payload_ts, out))
        if unknown:
            self.request_rebirth(topic.group, topic.edge_node, f"unknown {', '.join(unknown[:3])}")
        return samples

    def _sample(
        self,
        msg: Message,
        topic: SparkplugTopic,
        device: str,
        definition: MetricDef,
        m: Payload.Metric,
        payload_ts: int,
        out: WriteBatch,
    ) -> list[Sample]:
        if definition.name == BDSEQ_METRIC or definition.name.startswith(CONTROL_PREFIXES):
            return []
        try:
            value = metric_value(m, m.datatype if m.HasField("datatype") else definition.datatype)
        except SparkplugError as exc:
            self._metric_dead(
                msg,
                topic,
                f"metric {definition.name!r}: {exc.reason}",
                exc.key.removeprefix("sparkplug_"),
                out,
            )
            return []
        if value is None:
            return []
        ts = int(m.timestamp) if m.HasField("timestamp") else payload_ts
        return [Sample(device, definition.name, value, ts, definition.unit)]

    def _metric_dead(
        self, msg: Message, topic: SparkplugTopic, reason: str, key: str, out: WriteBatch
    ) -> None:
        mapping = self.mapper.find(topic.group, topic.edge_node)
        park, gw = (mapping.park, mapping.gateway) if mapping is not None else ("", "")
        out.dead_letters.append(
            self._dead(msg, park, gw, reason, msg.payload, "sparkplug", f"sparkplug_{key}")
        )

    def _store(
        self,
        msg: Message,
        mapping: NodeMapping,
        samples: Iterable[Sample],
        payload: Payload,
        result: SeqResult,
        out: WriteBatch,
    ) -> int:
        return self.parts.add(
            msg,
            park=mapping.park,
            gw=mapping.gateway,
            readings=mapping.readings(samples),
            seq=max(result.ext_seq, 0),
            sent_ms=int(payload.timestamp) if payload.HasField("timestamp") else 0,
            replay=msg.dup or result.step == "duplicate",
            out=out,
        )


def _bd_seq(payload: Payload) -> int | None:
    for m in payload.metrics:
        if m.name == BDSEQ_METRIC and m.WhichOneof("value") in ("long_value", "int_value"):
            return int(getattr(m, str(m.WhichOneof("value"))))
    return None
