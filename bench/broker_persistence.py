"""What Mosquitto's autosave costs: CPU per save and file size, with a held queue of batches.

Starts a real Mosquitto 2 (tests/servers.py) per autosave interval, parks an offline persistent
session holding ``MESSAGES`` QoS 1 payloads of ``PAYLOAD_BYTES`` (an ingester that is away), then
measures the broker's CPU time over ``IDLE_S`` seconds without traffic, when only autosave works.

    python bench/broker_persistence.py            (BENCH_MESSAGES, BENCH_PAYLOAD_BYTES, BENCH_IDLE_S)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import mosquitto_server

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "20000"))
PAYLOAD_BYTES = int(os.environ.get("BENCH_PAYLOAD_BYTES", "5000"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "10"))
TICK_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def run(interval_s: int, workdir: Path) -> tuple[float, int]:
    broker = mosquitto_server(workdir, extra_conf=f"autosave_interval {interval_s}")
    broker.start()
    try:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="held", clean_session=False)
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        sub.subscribe("bench/#", qos=1)
        time.sleep(0.5)
        sub.disconnect()
        sub.loop_stop()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub")
        pub.max_inflight_messages_set(200)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        payload = os.urandom(PAYLOAD_BYTES)
        infos = [pub.publish("bench/t", payload, qos=1) for _ in range(MESSAGES)]
        for info in infos:
            info.wait_for_publish(60)
        pub.disconnect()
        pub.loop_stop()
        assert broker._proc is not None
        pid = broker._proc.pid
        time.sleep(1.0)
        before = cpu_s(pid)
        time.sleep(IDLE_S)
        used = cpu_s(pid) - before
        db = workdir / "mosquitto.db"
        return used, db.stat().st_size if db.exists() else 0
    finally:
        broker.stop()


def main() -> None:
    print(f"held queue: {MESSAGES} messages x {PAYLOAD_BYTES} B; broker CPU over {IDLE_S:.0f} s idle")
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for interval in (60, 10, 1):
            used, size = run(interval, Path(tmp) / f"m{interval}")
            saves = IDLE_S / interval
            if base is None:
                base = used
            per_save = (used - base) / saves * 1000 if interval < 60 else float("nan")
            print(
                f"autosave_interval {interval:>2} s: CPU {used * 1000:7.0f} ms "
                f"({used / IDLE_S * 100:4.1f}% of a core), ~{per_save:6.0f} ms per save, "
                f"file {size / 1e6:6.1f} MB"
            )


if __name__ == "__main__":
    main()
