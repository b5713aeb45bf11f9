"""Reading the `rejected` topic: what intake refused, why, and the original bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from hub.bus import Bus
from hub.topics import Topics


async def rejections(
    bus: Bus, topics: Topics, *, member: str | None = None, quiet_seconds: float = 1.0
) -> AsyncIterator[dict[str, Any]]:
    """Every refusal on the bus, oldest first; stops once nothing new came for a while."""
    reader = bus.reader([topics.rejected], {})
    await reader.start()
    try:
        while records := await reader.fetch(max_records=1000, timeout=quiet_seconds):
            for record in records:
                entry = orjson.loads(record.value)
                if member is None or _member_of(entry) == member:
                    yield entry
    finally:
        await reader.stop()


def _member_of(entry: dict[str, Any]) -> str | None:
    member = entry.get("member")
    record = entry.get("record")
    if member is None and isinstance(record, dict):
        member = record.get("member")
    return member if isinstance(member, str) else None


def describe(entry: dict[str, Any]) -> str:
    """One line for people: when, who, what, why."""
    if "intake" in entry:  # a whole intake record was refused
        where = entry["intake"]
        topic = where.get("topic", "intake")  # records refused before topics were named
        return (
            f"-  {_member_of(entry) or '?':<10} {topic} partition {where['partition']} offset "
            f"{where['offset']}  {entry['reason']}: {entry['message']}"
        )
    return (
        f"{entry.get('received', '-')}  {entry['member']:<10} status {entry['status_id']}  "
        f"{entry.get('id') or '(no id)'}  {entry['reason']}: {entry['message']}"
    )
