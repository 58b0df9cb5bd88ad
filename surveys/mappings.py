"""Column mappings: which column of a survey file holds which contract field.

Two are built in: ``gnettrack`` (the G-NetTrack-style drive-test log: ``Timestamp``,
``Longitude``, ``Latitude``, ``Operatorname``, ``NetworkTech``, ``Level``, ``Qual``, ``SNR``, ...)
and ``generic`` (``lat, lon, time, operator, tech, rsrp, rsrq, sinr``). A user mapping is a TOML
file of the same shape::

    name = "my-app"
    kind = "cellular"                 # cellular | wifi | broadband
    time_format = "auto"              # or a strptime pattern such as "%d/%m/%Y %H:%M:%S"
    timezone = "Asia/Ho_Chi_Minh"     # for times written without an offset
    [columns]                         # contract field = column name, or a list: the first present wins
    ts = "Date"
    lat = "Lat"
    lon = "Lon"
    operator = "Carrier"
    tech = "RAT"
    rsrp_dbm = "RSRP"
    [defaults]                        # constant values for fields no column holds
    dev = "phone-1"

Column names are matched case-insensitively. The extra target ``plmn`` splits an MCC-MNC code
(``45204`` or ``452-04``) into ``mcc`` and ``mnc``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final, Literal

import msgspec

SurveyKind = Literal["cellular", "wifi", "broadband"]
Columns = dict[str, str | list[str]]


class MappingError(ValueError):
    """A mapping file that cannot be used; the message says what to fix."""


class Mapping(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How to read one survey layout.

    Attributes:
        name: shown in the import report.
        kind: the contract kind of every row.
        delimiter: CSV delimiter ("" = guessed among comma, semicolon and tab).
        time_format: ``auto`` (ISO 8601, Unix seconds or milliseconds, or
            ``2024.03.15_10.22.31``) or a ``strptime`` pattern.
        timezone: IANA zone of times written without an offset.
        columns: contract field → column name (or names: the first one present wins).
        defaults: contract field → a value used when no column gives one.
    """

    name: str = "custom"
    kind: SurveyKind = "cellular"
    delimiter: str = ""
    time_format: str = "auto"
    timezone: str = "UTC"
    columns: Columns = msgspec.field(default_factory=dict)
    defaults: dict[str, str | int | float | bool] = msgspec.field(default_factory=dict)


BUILTIN_MAPPINGS: Final[dict[str, Mapping]] = {
    "gnettrack": Mapping(
        name="gnettrack",
        kind="cellular",
        columns={
            "ts": "Timestamp",
            "lat": "Latitude",
            "lon": "Longitude",
            "alt_m": "Altitude",
            "operator": "Operatorname",
            "plmn": "Operator",
            "tech": "NetworkTech",
            "rsrp_dbm": "Level",
            "rsrq_db": "Qual",
            "sinr_db": "SNR",
            "cell_id": "CellID",
            "pci": "PSC",
            "earfcn": "ARFCN",
        },
        defaults={"dev": "gnettrack"},
    ),
    "generic": Mapping(
        name="generic",
        kind="cellular",
        columns={
            "ts": ["time", "timestamp", "ts", "datetime"],
            "lat": ["lat", "latitude"],
            "lon": ["lon", "lng", "long", "longitude"],
            "operator": ["operator", "carrier", "network"],
            "tech": ["tech", "technology", "rat"],
            "rsrp_dbm": ["rsrp", "rsrp_dbm"],
            "rsrq_db": ["rsrq", "rsrq_db"],
            "sinr_db": ["sinr", "sinr_db", "snr"],
            "dev": ["dev", "device"],
        },
        defaults={"dev": "survey"},
    ),
}
"""The mappings ``--mapping`` names without a file."""


def load_mapping(spec: str) -> Mapping:
    """A built-in mapping by name, or a TOML mapping file by path."""
    if spec in BUILTIN_MAPPINGS:
        return BUILTIN_MAPPINGS[spec]
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(BUILTIN_MAPPINGS)
        raise MappingError(f"mapping {spec!r} is neither a built-in mapping ({names}) nor a file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return msgspec.convert(data, Mapping)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, msgspec.ValidationError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
