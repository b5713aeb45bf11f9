"""RFC 3339 timestamps as STIX and TAXII write them, and a sortable form that keeps every digit.

STIX timestamps may carry any sub-second precision ("…:48Z", "…:48.5Z", "…:48.000001Z");
comparing them as strings is wrong and `datetime` drops digits past microseconds, so the
sort key keeps nine fractional digits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


def sort_key(value: str) -> str:
    """`value` in UTC with nine fractional digits, so that keys sort as times do.

    Raises ValueError for anything that is not an RFC 3339 timestamp with a time zone.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp with a time zone")
    date, time, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{time}{'+00:00' if zone in 'Zz' else zone}")
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a valid time: {exc}") from exc
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{(fraction or '').ljust(9, '0')}Z"


def format_micros(moment: datetime) -> str:
    """A UTC datetime as TAXII writes `date_added` here: microsecond precision, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(value: str) -> datetime:
    """A timestamp to an aware datetime (sub-microsecond digits dropped)."""
    key = sort_key(value)
    return datetime.strptime(key[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


ONE_MICROSECOND = timedelta(microseconds=1)
