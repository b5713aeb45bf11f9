"""Reading the `rejected` topic: what intake refused, why, and the original bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from hub.bus import Bus
from hub.records import RejectedEntry
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
                entry = RejectedEntry.from_record(record)
                if member is None or entry.member == member:
                    yield dict(entry.doc)
    finally:
        await reader.stop()


def describe(entry: dict[str, Any]) -> str:
    """One line for people: when, who, what, why."""
    read = RejectedEntry(entry)
    if read.whole_record:
        where = entry["intake"]
        topic = where.get("topic", "intake")  # records refused before topics were named
        return (
            f"-  {read.member or '?':<10} {topic} partition {where['partition']} offset "
            f"{where['offset']}  {entry['reason']}: {entry['message']}"
        )
    return (
        f"{entry.get('received', '-')}  {entry['member']:<10} status {entry['status_id']}  "
        f"{entry.get('id') or '(no id)'}  {entry['reason']}: {entry['message']}"
    )
