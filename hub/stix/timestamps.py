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
# Already UTC, ASCII digits, years 1000-9999: the key is the text itself, padded (no time
# zone arithmetic or strftime, which is most of the cost when validating STIX objects).
_PLAIN_UTC = re.compile(
    r"([1-9][0-9]{3}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?[Zz]"
)


def sort_key(value: str) -> str:
    """`value` in UTC with nine fractional digits, so that keys sort as times do.

    Raises ValueError for anything that is not an RFC 3339 timestamp with a time zone.
    """
    plain = _PLAIN_UTC.fullmatch(value)
    if plain is not None:
        date, time, fraction = plain.groups()
        try:
            datetime.fromisoformat(f"{date}T{time}")  # a real date and time
        except ValueError:
            pass  # the general path below raises the error with its usual message
        else:
            return f"{date}T{time}.{(fraction or '').ljust(9, '0')}Z"
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp with a time zone")
    date, time, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{time}{'+00:00' if zone in 'Zz' else zone}")
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a valid time: {exc}") from exc
    # isoformat pads years before 1000 to four digits (strftime's %Y does not on glibc),
    # which the key needs to sort.
    whole = moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return f"{whole}.{(fraction or '').ljust(9, '0')}Z"


def format_micros(moment: datetime) -> str:
    """A UTC datetime as TAXII writes `date_added` here: microsecond precision, `Z`."""
    # isoformat rather than strftime: 4-digit years always, and it is the cheaper of the two
    # on the view's hot path (one call per object routed).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse(value: str) -> datetime:
    """A timestamp to an aware datetime (sub-microsecond digits dropped)."""
    key = sort_key(value)
    # The key's first 26 characters are a fixed ISO 8601 form: fromisoformat reads it about
    # six times faster than strptime (the view parses one per object routed).
    return datetime.fromisoformat(key[:26]).replace(tzinfo=UTC)


ONE_MICROSECOND = timedelta(microseconds=1)


def rfc3339_now() -> str:
    """Now, as TAXII timestamps are written (UTC, millisecond precision, `Z`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
