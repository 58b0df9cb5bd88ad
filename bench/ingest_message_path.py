"""The ingester's per-message path without broker and sink, for a count that load cannot blur.

From MQTT bytes to a write batch and back to the acks: ``mqttlink.cut_publishes``, the
consumer's ``Message``, ``Ingester._take`` (validation, H3 cells, loss ledger, confirm notes),
the confirm of the stored batch, the acks, the latency histogram and the ledger snapshot; the
sink (line protocol, HTTP) is left out. Readings are the ones ``bench/ingest.py`` publishes.

    PYTHONPATH=$PWD python3 -m bench.ingest_message_path --shape 1 --encoding msgpack

sets the cycle collector as ``parkwatch ingest`` does and prints the CPU time per message (best
of ``--repeat``; it moves with the machine's load). For a figure that does not, count instructions: run it twice under callgrind, ``--messages 0`` and
``--messages N`` (both generate ``--pool`` messages, so only the path differs), and divide the
difference by N::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python3 -m bench.ingest_message_path \\
        --messages 3000 --repeat 1

(``PYTHONHASHSEED=0`` and the real interpreter binary, not a shim script).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench.ingest import TOPIC_ROOT, _varint, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, default=1, help="readings per message")
    ap.add_argument("--encoding", choices=["json", "msgpack"], default="msgpack")
    ap.add_argument("--messages", type=int, default=3000, help="0: set up only (the callgrind baseline)")
    ap.add_argument(
        "--pool",
        type=int,
        default=3000,
        help="messages generated (whatever --messages is: the same setup cost)",
    )
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from ingest.model import WriteResult
    from ingest.service import Ingester, _Pending
    from mqttlink.link import _TopicNames, cut_publishes
    from tests.fakes import FakeSink
    from tests.ingest.helpers import ingest_settings

    # Generated at the start of the day: the same bytes in every run of a day.
    day_s = time.time() // 86_400 * 86_400
    with mock.patch("time.time", return_value=day_s):
        pool = generate(
            max(args.pool, args.messages, 1) * args.shape,
            sizes=(args.shape, args.shape),
            encoding=args.encoding,
        )
    packets = [
        b"\x32"
        + _varint(4 + len(topic) + len(payload))
        + len(topic).to_bytes(2, "big")
        + topic.encode()
        + (i % 65535 + 1).to_bytes(2, "big")
        + payload
        for i, (topic, payload) in enumerate(pool)
    ]
    items = pool[: args.messages]
    stream = b"".join(packets[: args.messages])
    # The cycle collector as ``parkwatch ingest`` sets it (ingest/cli.py): with Python's default
    # threshold, collections of the growing write batch would be a tenth of the count here.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    best = float("inf")
    for _ in range(args.repeat):
        settings = ingest_settings(
            broker_port=1,
            root=TOPIC_ROOT,
            client_id="path",
            sink={"type": "duckdb", "path": ":memory:"},
            tmp=Path(tempfile.mkdtemp()),
        )
        ing = Ingester(settings, sink=FakeSink())
        reads: list[list] = []  # type: ignore[type-arg]
        ing.consumer._deliver = reads.append  # type: ignore[assignment]
        ing.consumer.link.ack = lambda mids: None  # type: ignore[method-assign]
        started = time.process_time()
        names = _TopicNames()
        pos = 0
        while pos < len(stream):
            publishes, pos, _ = cut_publishes(
                stream,
                pos,
                v5=False,
                max_messages=1 << 30,
                max_payload_bytes=65536,
                topic_name=names.__getitem__,
            )
            ing.consumer._on_publishes(publishes)
        pending = _Pending()
        for read in reads:
            taken = 0
            while taken < len(read):
                taken = ing._take(read, taken, pending)
        ing.confirms.stored(pending.notes)
        ing.consumer.ack(pending.messages, pending.size)
        ing._written(pending.batch, WriteResult(readings=pending.readings), time.monotonic())
        ing.ledger.drain(int(day_s * 1000))
        best = min(best, time.process_time() - started)
        if pending.readings != len(items) * args.shape:
            raise SystemExit(f"only {pending.readings} of {len(items) * args.shape} readings were valid")
    if items:
        print(
            f"{best / len(items) * 1e6:.2f} us of CPU per message ({len(items):,} messages, best of {args.repeat})"
        )


if __name__ == "__main__":
    main()
