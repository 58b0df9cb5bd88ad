"""The *Park operations* dashboard: OEE, machine states, energy, environment, alarms, dead letters.

OEE is approximated from what the PLCs report (state samples and part counters), per machine:

- availability = samples in ``running`` / samples not ``off`` (planned time; assumes regular
  sampling, which the edge agent's fixed poll interval gives);
- performance = parts made / (running hours × the ideal rate ``$ideal_parts_per_h``);
- quality = good parts / parts made, good = parts - rejects;
- OEE = availability × performance × quality = good parts / (planned hours × ideal rate).

Counters are differenced with ``non_negative_difference``, so a PLC counter reset costs one
sample, not a negative production figure.
"""

from __future__ import annotations

from typing import Final

from dashboards import panels as p
from dashboards.influxql import TIME_FILTER, cond, group_by, group_by_time, q, var_match, where
from dashboards.panels import Json

UID: Final = "parkwatch-park-operations"

PARK = var_match("park", "park")
MACHINE = var_match("dev", "machine")
# Dead letters of unknown gateways carry no park tag; keep them visible on every park selection.
PARK_OR_UNKNOWN = f"({PARK} OR {cond('park', '=', '')})"

OEE_STEPS = p.thresholds((None, "red"), (60, "orange"), (85, "green"))
"""85 % is the customary "world-class" OEE; below 60 % is typical of unmanaged lines."""
VIBRATION_WARN_MM_S: Final = 2.8
VIBRATION_ALARM_MM_S: Final = 4.5
"""ISO 10816-3 zone limits (group 2 machines, rigid foundation): B/C 2.8, C/D 4.5 mm/s RMS."""
PM25_LIMIT_UG_M3: Final = 50.0
"""Vietnam's QCVN 05:2023/BTNMT 24-hour PM2.5 limit."""
NOISE_LIMIT_DBA: Final = 85.0
"""Workplace exposure limit for 8 hours (QCVN 24:2016/BYT)."""
CO2_LIMIT_PPM: Final = 1000.0

MACHINE_FILTER = where(PARK, MACHINE)
DEVICE = group_by("gw", "dev")
"""Device ids are unique within a gateway only, so per-device series are per (gateway, device)."""


def _good_parts(*, time_group: bool = False) -> str:
    tail = f"{where(PARK, MACHINE)} {DEVICE}"
    return (
        f"SELECT non_negative_difference({q('parts_total')}) - non_negative_difference({q('rejects_total')}) "
        f"AS {q('good')} FROM {q('machine')} {tail}"
    )


def _state_samples(alias: str, condition: str = "") -> str:
    return f"SELECT {q('state')} AS {q(alias)} FROM {q('machine')} {where(PARK, MACHINE, condition)}"


def oee_query() -> str:
    return (
        f"SELECT 100 * sum({q('good')}) * count({q('sampled')}) / count({q('planned')}) "
        f"/ ($__range_s / 3600) / $ideal_parts_per_h AS {q('oee_pct')} "
        f"FROM ({_good_parts()}), ({_state_samples('sampled')}), "
        f"({_state_samples('planned', cond('state', '<>', 'off'))}) {DEVICE}"
    )


def availability_query() -> str:
    return (
        f"SELECT 100 * count({q('running')}) / count({q('planned')}) AS {q('availability_pct')} "
        f"FROM ({_state_samples('running', cond('state', '=', 'running'))}), "
        f"({_state_samples('planned', cond('state', '<>', 'off'))}) {DEVICE}"
    )


def performance_query() -> str:
    parts = (
        f"SELECT non_negative_difference({q('parts_total')}) AS {q('parts')} FROM {q('machine')} "
        f"{where(PARK, MACHINE)} {DEVICE}"
    )
    return (
        f"SELECT 100 * sum({q('parts')}) * count({q('sampled')}) / count({q('running')}) "
        f"/ ($__range_s / 3600) / $ideal_parts_per_h AS {q('performance_pct')} "
        f"FROM ({parts}), ({_state_samples('sampled')}), "
        f"({_state_samples('running', cond('state', '=', 'running'))}) {DEVICE}"
    )


def quality_query() -> str:
    inner = (
        f"SELECT non_negative_difference({q('parts_total')}) AS {q('parts')}, "
        f"non_negative_difference({q('rejects_total')}) AS {q('rejects')} FROM {q('machine')} "
        f"{where(PARK, MACHINE)} {DEVICE}"
    )
    return (
        f"SELECT 100 * (sum({q('parts')}) - sum({q('rejects')})) / sum({q('parts')}) AS {q('quality_pct')} "
        f"FROM ({inner}) {DEVICE}"
    )


def throughput_query() -> str:
    return (
        f"SELECT sum({q('good')}) / ($__interval_ms / 3600000) AS {q('good_parts_per_h')} "
        f"FROM ({_good_parts()}) WHERE {TIME_FILTER} {group_by_time('gw', 'dev', fill='0')}"
    )


def _mean(measurement: str, field: str, *clauses: str) -> str:
    return (
        f"SELECT mean({q(field)}) AS {q(field)} FROM {q(measurement)} "
        f"{where(*clauses)} {group_by_time('gw', 'dev', fill='null')}"
    )


def build() -> Json:
    """The dashboard JSON."""
    lay = p.Layout()
    lay.row("Overall equipment effectiveness (approximation)")
    note = (
        "Per machine over the selected time range. Planned time = samples not `off`; "
        "the ideal rate is the `ideal_parts_per_h` variable (set it to the machine's nameplate rate)."
    )
    lay.add(
        p.stat(
            "OEE",
            [p.target(oee_query(), alias="$tag_gw/$tag_dev")],
            description="Good parts ÷ (planned hours × ideal rate). " + note,
            unit="percent",
            steps=OEE_STEPS,
            decimals=1,
        ),
        w=6,
        h=6,
    )
    lay.add(
        p.stat(
            "Availability",
            [p.target(availability_query(), alias="$tag_gw/$tag_dev")],
            description="Running samples ÷ planned samples. " + note,
            unit="percent",
            steps=p.thresholds((None, "red"), (70, "orange"), (90, "green")),
            decimals=1,
        ),
        w=6,
        h=6,
    )
    lay.add(
        p.stat(
            "Performance",
            [p.target(performance_query(), alias="$tag_gw/$tag_dev")],
            description="Parts ÷ (running hours × ideal rate). " + note,
            unit="percent",
            steps=p.thresholds((None, "red"), (80, "orange"), (95, "green")),
            decimals=1,
        ),
        w=6,
        h=6,
    )
    lay.add(
        p.stat(
            "Quality",
            [p.target(quality_query(), alias="$tag_gw/$tag_dev")],
            description="Good parts ÷ parts (good = parts − rejects, from the PLC counters).",
            unit="percent",
            steps=p.thresholds((None, "red"), (95, "orange"), (99, "green")),
            decimals=2,
        ),
        w=6,
        h=6,
    )
    lay.add(
        p.timeseries(
            "Good parts per hour",
            [p.target(throughput_query(), alias="$tag_gw/$tag_dev")],
            description="Good parts made in each interval, scaled to an hourly rate.",
            unit="short",
            bars=True,
            min_value=0,
        ),
        w=12,
        h=8,
    )
    lay.add(
        p.state_timeline(
            "Machine states",
            [
                p.target(
                    f"SELECT last({q('state')}) AS {q('state')} FROM {q('machine')} {MACHINE_FILTER} "
                    f"{group_by_time('gw', 'dev', fill='previous')}",
                    alias="$tag_gw/$tag_dev",
                )
            ],
            description="Last reported PLC state per interval: running, idle, setup, fault, off.",
            colors={k: p.STATE_COLORS[k] for k in ("running", "idle", "setup", "fault", "off")},
        ),
        w=12,
        h=8,
    )
    states = ("running", "idle", "setup", "fault", "off")
    lay.add(
        p.piechart(
            "Time in state",
            [
                p.target(
                    f"SELECT count({q('state')}) AS {q(s)} FROM {q('machine')} "
                    f"{where(PARK, MACHINE, cond('state', '=', s))}",
                    ref_id=chr(ord("A") + i),
                    # The alias names the slice; the colour override matches it.
                    alias=s,
                )
                for i, s in enumerate(states)
            ],
            description="Share of state samples over the time range, all selected machines.",
            overrides=[p.color_override(s, p.STATE_COLORS[s]) for s in states],
        ),
        w=6,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Temperatures",
            [
                p.target(_mean("machine", "spindle_temp_c", PARK, MACHINE), alias="$tag_gw/$tag_dev spindle"),
                p.target(
                    _mean("machine", "motor_temp_c", PARK, MACHINE),
                    ref_id="B",
                    alias="$tag_gw/$tag_dev motor",
                ),
            ],
            description="Mean spindle and motor temperature per machine.",
            unit="celsius",
        ),
        w=9,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Vibration",
            [
                p.target(
                    f"SELECT max({q('vibration_mm_s')}) AS {q('vibration_mm_s')} FROM {q('machine')} "
                    f"{MACHINE_FILTER} {group_by_time('gw', 'dev')}",
                    alias="$tag_gw/$tag_dev",
                )
            ],
            description=(
                "Peak vibration velocity (mm/s RMS) per interval; dashed lines at the ISO 10816-3 "
                f"zone limits {VIBRATION_WARN_MM_S} (warning) and {VIBRATION_ALARM_MM_S} (alarm) mm/s."
            ),
            unit="velocitymms",
            steps=p.thresholds(
                (None, "green"), (VIBRATION_WARN_MM_S, "orange"), (VIBRATION_ALARM_MM_S, "red")
            ),
            threshold_style="dashed",
            min_value=0,
        ),
        w=9,
        h=8,
    )

    lay.row("Energy")
    energy_filter = where(PARK)
    lay.add(
        p.timeseries(
            "Power",
            [
                p.target(
                    f"SELECT mean({q('power_kw')}) AS {q('power_kw')} FROM {q('energy')} {energy_filter} "
                    f"{group_by_time('gw', 'dev')}",
                    alias="$tag_gw/$tag_dev",
                )
            ],
            description="Mean active power per meter.",
            unit="kwatt",
        ),
        w=12,
        h=8,
    )
    kwh = (
        f"SELECT non_negative_difference({q('energy_kwh')}) AS {q('kwh')} FROM {q('energy')} "
        f"{energy_filter} {DEVICE}"
    )
    lay.add(
        p.bargauge(
            "Energy used",
            [
                p.target(
                    f"SELECT sum({q('kwh')}) AS {q('energy_kwh')} FROM ({kwh}) {DEVICE}",
                    alias="$tag_gw/$tag_dev",
                )
            ],
            description="Energy counted by each meter over the time range (counter differences).",
            unit="kwatth",
            steps=p.thresholds((None, "blue")),
            min_value=0,
        ),
        w=6,
        h=8,
    )
    # InfluxQL cannot combine measurements in one expression (energy per part needs energy and
    # machine), so the energy KPIs stay per meter.
    lay.add(
        p.stat(
            "Peak demand",
            [
                p.target(
                    f"SELECT max({q('power_kw')}) AS {q('peak_kw')} FROM {q('energy')} {energy_filter} {DEVICE}",
                    alias="$tag_gw/$tag_dev",
                )
            ],
            description="Highest active power each meter reported in the time range (drives the demand charge).",
            unit="kwatt",
            decimals=1,
        ),
        w=6,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Voltage",
            [p.target(_mean("energy", "voltage_v", PARK), alias="$tag_gw/$tag_dev")],
            description="Mean supply voltage per meter.",
            unit="volt",
        ),
        w=12,
        h=7,
    )
    lay.add(
        p.timeseries(
            "Power factor",
            [p.target(_mean("energy", "power_factor", PARK), alias="$tag_gw/$tag_dev")],
            description="Mean power factor per meter; utilities bill reactive energy below 0.9.",
            unit="none",
            steps=p.thresholds((None, "red"), (0.9, "green")),
            threshold_style="dashed",
        ),
        w=12,
        h=7,
    )

    lay.row("Environment")
    env = [
        ("temp_c", "Temperature", "celsius", None, "Mean air temperature per sensor."),
        ("humidity_pct", "Humidity", "humidity", None, "Mean relative humidity per sensor."),
        (
            "pm25_ug_m3",
            "PM2.5",
            "conµgm3",
            PM25_LIMIT_UG_M3,
            f"Mean fine dust; dashed line at the QCVN 05:2023 24-hour limit ({PM25_LIMIT_UG_M3:g} µg/m³).",
        ),
        (
            "noise_dba",
            "Noise",
            "dBm",
            NOISE_LIMIT_DBA,
            f"Mean sound level (dBA); dashed line at the 8-hour workplace limit ({NOISE_LIMIT_DBA:g} dBA).",
        ),
        (
            "co2_ppm",
            "CO₂",
            "ppm",
            CO2_LIMIT_PPM,
            f"Mean CO₂; dashed line at {CO2_LIMIT_PPM:g} ppm (ventilate).",
        ),
    ]
    for field, title, unit, limit, desc in env:
        steps = None if limit is None else p.thresholds((None, "green"), (limit, "red"))
        lay.add(
            p.timeseries(
                title,
                [p.target(_mean("environment", field, PARK), alias="$tag_gw/$tag_dev")],
                description=desc,
                unit="suffix: dBA" if field == "noise_dba" else unit,
                steps=steps,
                threshold_style="off" if limit is None else "dashed",
            ),
            w=8 if field in ("temp_c", "humidity_pct", "pm25_ug_m3") else 12,
            h=7,
        )

    lay.row("Alarms and dead letters")
    lay.add(
        p.table(
            "Alarm counts",
            [
                p.target(
                    f"SELECT count({q('state')}) AS {q('fault_samples')} FROM {q('machine')} "
                    f"{where(PARK, MACHINE, cond('state', '=', 'fault'))} {DEVICE}",
                    fmt="table",
                ),
                p.target(
                    f"SELECT count({q('vibration_mm_s')}) AS {q('vibration_alarms')} FROM {q('machine')} "
                    f"{where(PARK, MACHINE, cond('vibration_mm_s', '>=', VIBRATION_ALARM_MM_S))} {DEVICE}",
                    ref_id="B",
                    fmt="table",
                ),
                p.target(
                    f"SELECT count({q('pm25_ug_m3')}) AS {q('pm25_exceedances')} FROM {q('environment')} "
                    f"{where(PARK, cond('pm25_ug_m3', '>', PM25_LIMIT_UG_M3))} {DEVICE}",
                    ref_id="C",
                    fmt="table",
                ),
            ],
            description=(
                "Samples in alarm per device over the time range: machine faults, vibration at or "
                f"above {VIBRATION_ALARM_MM_S} mm/s, PM2.5 above {PM25_LIMIT_UG_M3:g} µg/m³."
            ),
            steps=p.thresholds((None, "text"), (1, "red")),
            merge=True,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.timeseries(
            "Dead letters",
            [
                p.target(
                    f"SELECT count({q('reason')}) AS {q('dead_letters')} FROM {q('dead_letter')} "
                    f"{where(PARK_OR_UNKNOWN)} {group_by_time('gw', fill='0')}",
                    alias="$tag_gw",
                )
            ],
            description=(
                "Rejected readings and messages per interval and gateway (malformed, out of range, "
                "unknown gateway, identity mismatch). Unknown gateways have no park and always show."
            ),
            unit="short",
            bars=True,
            min_value=0,
        ),
        w=8,
        h=8,
    )
    lay.add(
        p.table(
            "Latest dead letters",
            [
                p.target(
                    f"SELECT {q('gw')}, {q('reason')}, {q('topic')} FROM {q('dead_letter')} "
                    f"{where(PARK_OR_UNKNOWN)} ORDER BY time DESC LIMIT 100",
                    fmt="table",
                )
            ],
            description="The 100 most recent dead letters with their reason; the raw payload is in the `raw` field.",
        ),
        w=8,
        h=8,
    )
    return p.dashboard(
        uid=UID,
        title="parkwatch · Park operations",
        description="Factory KPIs of industrial parks: OEE, machine states, energy, environment, alarms.",
        tags=["parkwatch", "factory"],
        variables=[
            p.query_variable(
                "park",
                "Park",
                # Every measurement: a park with meters or sensors but no machine still shows.
                f"SHOW TAG VALUES WITH KEY = {q('park')}",
                description="Industrial park(s).",
            ),
            p.query_variable(
                "machine",
                "Machine",
                f"SHOW TAG VALUES FROM {q('machine')} WITH KEY = {q('dev')} WHERE {PARK}",
                description="Machine device id(s) in the selected parks.",
            ),
            p.textbox_variable(
                "ideal_parts_per_h",
                "Ideal parts/h",
                "60",
                description="Ideal (nameplate) production rate per machine, parts per hour, used by OEE.",
            ),
        ],
        layout=lay,
        time_from="now-6h",
    )
