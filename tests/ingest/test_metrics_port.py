"""Several ``parkwatch ingest`` processes on one host from one config file: metrics on any free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ingest.helpers import Publisher, batch_for, start_ingest_process
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC_NAMES = sorted(
    set(re.findall(r"`(parkwatch_ingest_[a-z0-9_]+)[`{]", (ROOT / "docs" / "ingest.md").read_text()))
)


def _get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.read().decode()


def _sample(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else -1.0


def _wait(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextmanager
def _stopped_at_exit(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_two_ingesters_on_one_host_share_one_config_with_metrics_on_free_ports(
    mosquitto: ServerProcess, influxdb: ServerProcess, topic_root: str, unique: str, tmp_path: Path
) -> None:
    assert len(DOC_NAMES) >= 12, "docs/ingest.md lists the ingester's metrics"
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[broker]\nport = {mosquitto.port}\ntopic_root = "{topic_root}"\nprotocol = "5"\n'
        f'[sink]\ntype = "influxdb"\nurl = "http://127.0.0.1:{influxdb.port}"\ndatabase = "m{unique}"\n'
        f'[ingest]\nshare_group = "g{unique}"\nmetrics_port = 0\nflush_interval_s = 0.05\n'
    )
    names = ("a", "b")
    port_files = {n: tmp_path / "run" / f"ingest-{n}.port" for n in names}
    logs = {n: tmp_path / f"ingest-{n}.log" for n in names}
    procs = {
        n: start_ingest_process(
            config,
            logs[n],
            {
                "PARKWATCH_INGEST__CLIENT_ID": f"ing-{n}-{unique}",
                "PARKWATCH_INGEST__SPOOL_DIR": str(tmp_path / f"spool-{n}"),
                "PARKWATCH_INGEST__METRICS_PORT_FILE": str(port_files[n]),
            },
        )
        for n in names
    }
    with _stopped_at_exit(list(procs.values())):
        _wait(lambda: all(f.exists() for f in port_files.values()), 30, "both port files")
        ports = {n: int(port_files[n].read_text()) for n in names}
        assert ports["a"] != ports["b"] and all(0 < p < 65536 for p in ports.values())
        for n in names:
            line = f"metrics and health on http://127.0.0.1:{ports[n]}/metrics and /healthz"
            _wait(lambda n=n, line=line: line in logs[n].read_text(), 10, f"{n}'s port logged")  # type: ignore[misc]
            assert _get(ports[n], "/healthz") == (200, "ok\n")
        _wait(
            lambda: all(
                _sample(_get(p, "/metrics")[1], "parkwatch_ingest_broker_connected") == 1.0
                for p in ports.values()
            ),
            30,
            "both ingesters connected",
        )

        batches = [batch_for(f"gw-{k % 3}", k // 3, 20) for k in range(60)]
        total = sum(len(b.readings) for b in batches)
        pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{unique}")
        pub.publish_batches(topic_root, "hp-a", batches)
        pub.close()

        def stored() -> list[float]:
            return [
                _sample(_get(p, "/metrics")[1], "parkwatch_ingest_readings_total") for p in ports.values()
            ]

        _wait(lambda: sum(stored()) >= total, 30, "every reading stored by one of the two")
        assert sum(stored()) == total

        # Every metric the docs name is in the scrape (labelled counters with no sample yet too).
        text = _get(ports["a"], "/metrics")[1]
        exported = set(re.findall(r"^# TYPE (parkwatch_ingest_\w+) ", text, re.M))
        documented = {n for n in DOC_NAMES if not n.endswith("_")}  # `..._ledger_{...}` patterns
        assert documented - exported == set()
        assert 'parkwatch_ingest_e2e_latency_seconds_bucket{le="+Inf"}' in text

        # An explicit port that is taken: one line naming the key, no traceback.
        busy = subprocess.run(
            [sys.executable, "-m", "parkwatch", "ingest", "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "PARKWATCH_INGEST__CLIENT_ID": f"ing-c-{unique}",
                "PARKWATCH_INGEST__SPOOL_DIR": str(tmp_path / "spool-c"),
                "PARKWATCH_INGEST__METRICS_PORT": str(ports["a"]),
            },
            timeout=60,
        )
        assert busy.returncode == 2, busy.stderr[-2000:]
        assert f"metrics_port: cannot listen on 127.0.0.1:{ports['a']}" in busy.stderr
        assert "Traceback" not in busy.stderr

        for n in names:
            procs[n].send_signal(signal.SIGTERM)
        for n in names:
            assert procs[n].wait(30) == 0, logs[n].read_text()[-3000:]
            assert not port_files[n].exists(), "a clean stop removes the port file"
