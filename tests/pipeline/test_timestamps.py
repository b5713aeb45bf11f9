"""Timestamps as the hub reads and writes them: any RFC 3339 form a member sends parses to
the moment it names, sort keys order as the moments do, and `date_added` round-trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from hub.stix import timestamps

moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def written(moment: datetime, zone: timezone, digits: int, extra: str) -> str:
    """`moment` as a member might write it: local time with an offset, 0-9 digits."""
    local = moment.astimezone(zone)
    text = local.replace(tzinfo=None).isoformat(timespec="seconds")
    if digits:
        text += "." + (f"{local.microsecond:06d}" + extra)[:digits]
    offset = local.strftime("%z")
    return text + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")


@given(moments, offsets, st.integers(0, 9), st.sampled_from(["000", "999", "123"]))
def test_parse_reads_the_moment_to_the_microsecond(moment, zone, digits, extra) -> None:
    text = written(moment, zone, digits, extra)
    kept = moment.microsecond // 10 ** (6 - min(digits, 6)) * 10 ** (6 - min(digits, 6))
    assert timestamps.parse(text) == moment.replace(microsecond=kept)


@given(moments, moments, offsets, offsets)
def test_sort_keys_order_as_the_moments_do(a, b, zone_a, zone_b) -> None:
    key_a = timestamps.sort_key(written(a, zone_a, 6, ""))
    key_b = timestamps.sort_key(written(b, zone_b, 6, ""))
    assert (key_a < key_b) == (a < b) and (key_a == key_b) == (a == b)


@given(moments)
def test_date_added_round_trips(moment) -> None:
    text = timestamps.format_micros(moment)
    assert len(text) == 27 and text.endswith("Z")
    assert timestamps.parse(text) == moment
