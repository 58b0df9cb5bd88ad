"""Readings of contract version 1: one msgspec struct per kind, tagged by ``kind``.

Every kind's fields are optional (a collector reports what it could read) except the few that
identify a measurement (a cellular reading needs its operator and technology). Units live in the
field names. Type, range, enum, length and pattern checks run inside msgspec's decoder, so a batch
is validated at C speed; :mod:`contract.codec` adds the checks that depend on the clock, and the
device id's pattern (see :data:`DeviceId`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

import msgspec

from contract.ids import BAND, BSSID, ID, FieldName, TagKey
from contract.limits import MAX_GENERIC_FIELDS, MAX_STRING_LENGTH, MAX_TAGS_PER_READING

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_STRING_LENGTH)]
TimestampMs = Annotated[int, msgspec.Meta(ge=0, le=253402300799999)]
Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
Alt = Annotated[float, msgspec.Meta(ge=-500.0, le=10000.0)]
DeviceId = Annotated[str, msgspec.Meta(max_length=ID.max_length, extra_json_schema={"pattern": ID.pattern})]
"""A device id (syntax :data:`contract.ids.ID`). The schema carries the pattern, but the decoder
checks only the length: :mod:`contract.codec` matches the pattern, once per distinct id (ids
repeat, and a pattern inside msgspec costs about a microsecond per reading, half of a reading's
decoding). Build readings through :func:`contract.codec.decode_batch`, or check ids yourself."""


# Bounds on floats also reject NaN and infinities (every comparison with NaN is false).
Pct = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Counter = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

Technology = Literal["GSM", "UMTS", "LTE", "NR"]
MachineState = Literal["off", "idle", "running", "fault", "setup"]


class Reading(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="kind",
    # Not tracked by the cycle collector: a reading holds only scalars and dicts of scalars, so
    # it can be part of no reference cycle, and untracked structs make a batch's decoding about
    # a fifth cheaper (fewer allocations counted towards a collection, none to traverse).
    gc=False,
):
    """Fields common to every reading.

    Attributes:
        ts: measurement time, integer milliseconds since the Unix epoch, UTC.
        dev: device id, unique within the gateway.
        lat, lon, alt_m: WGS84 position of a mobile probe (both lat and lon, or neither).
        tags: up to 8 free low-cardinality labels (e.g. ``line``, ``factory``).
    """

    ts: TimestampMs
    dev: DeviceId
    lat: Lat | None = None
    lon: Lon | None = None
    alt_m: Alt | None = None
    tags: Annotated[dict[TagKey, Text], msgspec.Meta(max_length=MAX_TAGS_PER_READING)] | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = ()
    """String fields of this kind with few distinct values, stored as tags/indexed columns."""
    REQUIRED: ClassVar[tuple[str, ...]] = ()


class Cellular(Reading, tag="cellular", frozen=True):
    """Serving-cell measurements of a mobile modem (3GPP TS 36.133 / 38.133 ranges).

    ``no_service`` true: the modem found no usable cell of its operator (searching, not
    registered). Such a reading carries ``rsrp_dbm = -140``, the 3GPP reporting floor ("below
    -140 dBm"), so that it classes as no service; the flag keeps it apart from a measured value.
    """

    operator: Text
    tech: Technology
    rsrp_dbm: Annotated[float, msgspec.Meta(ge=-156.0, le=-31.0)] | None = None
    rsrq_db: Annotated[float, msgspec.Meta(ge=-43.0, le=20.0)] | None = None
    sinr_db: Annotated[float, msgspec.Meta(ge=-23.0, le=40.0)] | None = None
    rssi_dbm: Annotated[float, msgspec.Meta(ge=-120.0, le=-20.0)] | None = None
    cell_id: Annotated[int, msgspec.Meta(ge=0, le=2**36 - 1)] | None = None
    pci: Annotated[int, msgspec.Meta(ge=0, le=1007)] | None = None
    band: Annotated[str, msgspec.Meta(pattern=BAND.pattern)] | None = None
    earfcn: Annotated[int, msgspec.Meta(ge=0, le=3279165)] | None = None
    mcc: Annotated[int, msgspec.Meta(ge=0, le=999)] | None = None
    mnc: Annotated[int, msgspec.Meta(ge=0, le=999)] | None = None
    no_service: bool | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = ("operator", "tech")
    REQUIRED: ClassVar[tuple[str, ...]] = ("operator", "tech")


class Wifi(Reading, tag="wifi", frozen=True):
    """One access point seen in a Wi-Fi scan."""

    ssid: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    bssid: Annotated[str, msgspec.Meta(pattern=BSSID.pattern)] | None = None
    rssi_dbm: Annotated[float, msgspec.Meta(ge=-120.0, le=0.0)] | None = None
    freq_mhz: Annotated[int, msgspec.Meta(ge=2400, le=7125)] | None = None
    channel: Annotated[int, msgspec.Meta(ge=1, le=233)] | None = None
    snr_db: Annotated[float, msgspec.Meta(ge=-20.0, le=80.0)] | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = ("ssid", "bssid")


class Broadband(Reading, tag="broadband", frozen=True):
    """An active probe of a broadband target: latency, loss, throughput, reachability."""

    target: Text
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0, le=60000.0)] | None = None
    jitter_ms: Annotated[float, msgspec.Meta(ge=0.0, le=60000.0)] | None = None
    loss_pct: Pct | None = None
    down_mbps: Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)] | None = None
    up_mbps: Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)] | None = None
    dns_ms: Annotated[float, msgspec.Meta(ge=0.0, le=60000.0)] | None = None
    ipv4_ok: bool | None = None
    ipv6_ok: bool | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = ("target",)
    REQUIRED: ClassVar[tuple[str, ...]] = ("target",)


class Machine(Reading, tag="machine", frozen=True):
    """A production machine read from its PLC."""

    state: MachineState | None = None
    spindle_temp_c: Annotated[float, msgspec.Meta(ge=-50.0, le=400.0)] | None = None
    motor_temp_c: Annotated[float, msgspec.Meta(ge=-50.0, le=400.0)] | None = None
    vibration_mm_s: Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)] | None = None
    spindle_load_pct: Annotated[float, msgspec.Meta(ge=0.0, le=250.0)] | None = None
    parts_total: Counter | None = None
    rejects_total: Counter | None = None


class Energy(Reading, tag="energy", frozen=True):
    """An electricity meter."""

    power_kw: Annotated[float, msgspec.Meta(ge=-100000.0, le=100000.0)] | None = None
    energy_kwh: Annotated[float, msgspec.Meta(ge=0.0, le=1e12)] | None = None
    voltage_v: Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)] | None = None
    current_a: Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)] | None = None
    power_factor: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] | None = None


class Environment(Reading, tag="environment", frozen=True):
    """An environment sensor."""

    temp_c: Annotated[float, msgspec.Meta(ge=-60.0, le=100.0)] | None = None
    humidity_pct: Pct | None = None
    pm25_ug_m3: Annotated[float, msgspec.Meta(ge=0.0, le=5000.0)] | None = None
    noise_dba: Annotated[float, msgspec.Meta(ge=0.0, le=200.0)] | None = None
    co2_ppm: Annotated[float, msgspec.Meta(ge=0.0, le=100000.0)] | None = None


class System(Reading, tag="system", frozen=True):
    """The gateway's own health (edge agent ``system`` collector)."""

    cpu_pct: Pct | None = None
    mem_pct: Pct | None = None
    disk_pct: Pct | None = None
    uptime_s: Annotated[float, msgspec.Meta(ge=0.0, le=1e10)] | None = None
    clock_offset_ms: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None
    """The gateway's clock minus the reference time (positive: ahead), from chrony or timesyncd."""
    clock_synced: bool | None = None


GenericValue = float | int | bool | Text


class Generic(Reading, tag="generic", frozen=True):
    """Anything else: up to 32 named values. Numbers are stored as floats."""

    f: Annotated[dict[FieldName, GenericValue], msgspec.Meta(min_length=1, max_length=MAX_GENERIC_FIELDS)]


AnyReading = Cellular | Wifi | Broadband | Machine | Energy | Environment | System | Generic

KINDS: Final[dict[str, type[Reading]]] = {
    "cellular": Cellular,
    "wifi": Wifi,
    "broadband": Broadband,
    "machine": Machine,
    "energy": Energy,
    "environment": Environment,
    "system": System,
    "generic": Generic,
}
"""Every kind of contract version 1 by its ``kind`` tag."""

NO_SERVICE_RSRP_DBM: Final = -140.0
"""RSRP reported with ``no_service`` (27.007 ``+CESQ`` index 0: below -140 dBm)."""

COMMON_FIELDS: Final = frozenset({"ts", "dev", "lat", "lon", "alt_m", "tags"})
RESERVED_TAG_KEYS: Final = frozenset({"kind", "park", "gw", "dev", "h3", "time", "ts", "f", "v", "seq"})
"""Tag keys a reading may not use: storage adds these as its own tags and columns."""


def kind_of(reading: Reading) -> str:
    """The ``kind`` tag of a reading."""
    return type(reading).__struct_config__.tag  # type: ignore[return-value]


def measurement_fields(kind: type[Reading]) -> tuple[str, ...]:
    """The kind-specific field names of ``kind``, in declaration order."""
    return tuple(f for f in kind.__struct_fields__ if f not in COMMON_FIELDS)


TECH_ALIASES: Final[dict[str, Technology]] = {
    "gsm": "GSM", "2g": "GSM", "gprs": "GSM", "edge": "GSM",
    "umts": "UMTS", "3g": "UMTS", "wcdma": "UMTS", "hspa": "UMTS", "hspa+": "UMTS", "hsdpa": "UMTS",
    "lte": "LTE", "4g": "LTE", "lte-a": "LTE", "lte+": "LTE",
    "nr": "NR", "5g": "NR", "5g nr": "NR", "5g-nr": "NR", "nr5g": "NR", "5gnr": "NR",
}  # fmt: skip
"""Spellings of a radio technology that mean one thing, lower case, to its contract name."""


def normalise_tech(text: str) -> Technology | None:
    """The contract name of a technology spelt in any case (``lte`` → ``LTE``, ``5g`` → ``NR``)."""
    return TECH_ALIASES.get(text.strip().lower())
