"""How long each Grafana panel's InfluxQL takes on a bigger park, against a plain aggregate.

Starts a private InfluxDB 1.x (the test servers' helper), loads ``--gateways`` gateways over
``--hours`` hours at one sample a minute (the dashboard tests' scenario, encoded by the
ingester's line-protocol code), then runs every query of every dashboard ``--repeat`` times with
all variables on "All", for a 6-hour and a 24-hour time range, as Grafana expands them.

Prints the median time per query and its ratio to a baseline measured in the same run,
``SELECT count("rsrp_dbm") FROM "cellular" WHERE $timeFilter``: one aggregate over the
biggest measurement with no grouping. The machine is shared and noisy: compare ratios, not
milliseconds between runs. Not a pass/fail test.

    python bench/dashboard_queries.py --gateways 40 --hours 24
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dashboards.grafana_macros import TimeRange, interpolate  # noqa: E402
from tests.dashboards.model import load_dashboards, queries  # noqa: E402
from tests.dashboards.simdata import Scenario, lines  # noqa: E402
from tests.dashboards.test_queries import Influx, _variable_values  # noqa: E402
from tests.servers import influxdb_server  # noqa: E402

BASELINE = 'SELECT count("rsrp_dbm") FROM "cellular" WHERE $timeFilter'


def _fleet(n_gateways: int, n_parks: int) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    parks = {f"park-{p:02d}": (20.70 + 0.05 * p, 106.50 + 0.05 * p) for p in range(n_parks)}
    names = list(parks)
    gateways = {f"gw-{g:03d}": names[g % n_parks] for g in range(n_gateways)}
    return gateways, parks


def _time_ms(db: Influx, text: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = db.query(text)
        samples.append((time.perf_counter() - t0) * 1000)
        res = result["results"][0]
        if "error" in res:
            raise SystemExit(f"query failed: {res['error']}\n{text}")
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=40, help="simulated gateways (default 40)")
    parser.add_argument("--parks", type=int, default=4, help="parks they are spread over (default 4)")
    parser.add_argument(
        "--hours", type=float, default=24.0, help="hours of data at 1 sample/min (default 24)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per query; the median is reported")
    parser.add_argument("--top", type=int, default=12, help="how many of the slowest queries to list")
    args = parser.parse_args()

    gateways, parks = _fleet(args.gateways, args.parks)
    scenario = Scenario.ending_at(int(time.time()), hours=args.hours)
    t0 = time.perf_counter()
    points = lines(scenario, gateways=gateways, parks=parks)
    print(f"generated {len(points):,} points in {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory(prefix="pw-bench-influx-") as tmp:
        server = influxdb_server(Path(tmp))
        server.start()
        try:
            db = Influx(server, "bench")
            db.query('CREATE DATABASE "bench"')
            t0 = time.perf_counter()
            for i in range(0, len(points), 10_000):
                db.write("\n".join(points[i : i + 10_000]))
            load_s = time.perf_counter() - t0
            print(
                f"loaded into InfluxDB {server.name} in {load_s:.1f} s ({len(points) / load_s:,.0f} points/s)\n"
            )
            dashboards = load_dashboards()
            for hours in (6, 24):
                if hours > args.hours:
                    continue
                to_ms = scenario.end_s * 1000
                tr = TimeRange(from_ms=to_ms - hours * 3_600_000, to_ms=to_ms)
                base_ms = _time_ms(db, interpolate(BASELINE, tr, {}), args.repeat)
                rows: list[tuple[float, str]] = []
                per_dashboard: dict[str, float] = {}
                for name, dashboard in dashboards.items():
                    variables = _variable_values(db, tr, dashboard, all_values=True)
                    for query in queries(name, dashboard):
                        ms = _time_ms(db, interpolate(query.text, tr, variables), args.repeat)
                        rows.append((ms, str(query)))
                        per_dashboard[name] = per_dashboard.get(name, 0.0) + ms
                ms_all = [ms for ms, _ in rows]
                print(f"== time range {hours} h, interval {tr.interval_ms // 1000} s, {len(rows)} queries")
                print(f"baseline count(rsrp_dbm): {base_ms:8.1f} ms")
                print(
                    f"median query: {statistics.median(ms_all):8.1f} ms  "
                    f"(x{statistics.median(ms_all) / base_ms:.2f} baseline)"
                )
                for name, total in per_dashboard.items():
                    print(f"  {name:16s} sum of medians {total:8.1f} ms  (x{total / base_ms:.1f} baseline)")
                print(f"slowest {args.top}:")
                for ms, label in sorted(rows, reverse=True)[: args.top]:
                    print(f"  {ms:8.1f} ms  x{ms / base_ms:6.2f}  {label}")
                print()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
