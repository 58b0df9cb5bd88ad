"""Survey rows → wire-contract readings as plain data (``{"kind": "cellular", "ts": ...}``).

Only formats are converted here (times, numbers written as text, MCC-MNC codes); ranges, enums and
the rest are checked by the contract decoder in the ingester, the same as for MQTT batches. A
value that is not a number is passed on as text, so the contract names the field that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from surveys.mappings import Mapping, MappingError

INT_FIELDS: Final = frozenset({"cell_id", "pci", "earfcn", "mcc", "mnc", "freq_mhz", "channel"})
BOOL_FIELDS: Final = frozenset({"no_service", "ipv4_ok", "ipv6_ok"})
TEXT_FIELDS: Final = frozenset({"dev", "operator", "tech", "band", "ssid", "bssid", "target"})
MISSING: Final = frozenset({"", "-", "na", "n/a", "null", "none", "nan"})
_GNETTRACK_TIME = re.compile(r"\d{4}\.\d{2}\.\d{2}_\d{2}\.\d{2}\.\d{2}")
_PLMN = re.compile(r"(?P<mcc>[0-9]{3})-?(?P<mnc>[0-9]{2,3})")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that could not be turned into a reading (before any contract check)."""

    row: int
    key: str
    detail: str


@dataclass(frozen=True, slots=True)
class Converted:
    """A row turned into a reading (plain data, not yet validated)."""

    row: int
    reading: dict[str, Any]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(f"unknown time zone {name!r}: use an IANA name such as Asia/Ho_Chi_Minh") from exc


def parse_time_ms(value: Any, time_format: str, zone: ZoneInfo) -> int:
    """Milliseconds since the epoch of a survey time; raise ``ValueError`` when unreadable."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if number != number:  # not a number: a date and time
            if time_format != "auto":
                moment = datetime.strptime(text, time_format)
            elif _GNETTRACK_TIME.fullmatch(text):
                moment = datetime.strptime(text, "%Y.%m.%d_%H.%M.%S")
            else:
                moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            return int(moment.astimezone(UTC).timestamp() * 1000)
    # Unix time: milliseconds from about 1973 on, else seconds.
    return int(number if abs(number) >= 1e11 else number * 1000)


def _value(field: str, raw: Any) -> Any:
    if not isinstance(raw, str) or field in TEXT_FIELDS:
        return raw
    if field in BOOL_FIELDS:
        lowered = raw.lower()
        return True if lowered in ("1", "true", "yes") else False if lowered in ("0", "false", "no") else raw
    try:
        number = float(raw.replace(",", ".")) if raw.count(",") == 1 and "." not in raw else float(raw)
    except ValueError:
        return raw
    if field in INT_FIELDS and number.is_integer():
        return int(number)
    return number


def _lookup(row: dict[str, Any], lowered: dict[str, str], names: str | list[str]) -> Any:
    for name in [names] if isinstance(names, str) else names:
        key = lowered.get(name.lower())
        if key is None:
            continue
        value = row[key]
        if value is None or (isinstance(value, str) and value.strip().lower() in MISSING):
            continue
        return value
    return None


def convert_rows(
    rows: Iterable[tuple[int, dict[str, Any]]], mapping: Mapping, *, device: str = "", timezone: str = ""
) -> Iterator[Converted | RowProblem]:
    """One :class:`Converted` or :class:`RowProblem` per row.

    Args:
        rows: ``(row number, columns)`` from :func:`surveys.formats.read_rows`.
        mapping: the column mapping.
        device: the ``dev`` of every reading (overrides the mapping).
        timezone: the zone of times without an offset (overrides the mapping).
    """
    zone = _zone(timezone or mapping.timezone)
    for n, row in rows:
        if "__error__" in row:
            yield RowProblem(n, "malformed", str(row["__error__"]))
            continue
        lowered = {k.lower(): k for k in row}
        reading: dict[str, Any] = {"kind": mapping.kind}
        for field, value in mapping.defaults.items():
            reading[field] = value
        for field, names in mapping.columns.items():
            raw = _lookup(row, lowered, names)
            if raw is not None:
                reading[field] = raw
        if device:
            reading["dev"] = device
        plmn = reading.pop("plmn", None)
        if plmn is not None:
            m = _PLMN.fullmatch(str(plmn).strip())
            if m:
                reading.setdefault("mcc", int(m["mcc"]))
                reading.setdefault("mnc", int(m["mnc"]))
                if mapping.kind == "cellular":
                    reading.setdefault("operator", f"{m['mcc']}-{m['mnc']}")
        if "ts" not in reading:
            yield RowProblem(n, "missing_field:ts", f"row {n} has no time")
            continue
        try:
            reading["ts"] = parse_time_ms(reading["ts"], mapping.time_format, zone)
        except (ValueError, OverflowError, OSError):
            yield RowProblem(n, "malformed:ts", f"row {n}: time {str(reading['ts'])[:40]!r} is not readable")
            continue
        for field in list(reading):
            if field not in ("kind", "ts"):
                reading[field] = _value(field, reading[field])
        yield Converted(n, reading)
