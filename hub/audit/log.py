"""The audit log as stored on the bus: every record of the `audit` topic, in order."""

from __future__ import annotations

from typing import Any

import orjson

from hub.bus import Bus, read_to


async def audit_records(bus: Bus, topic: str) -> list[Any]:
    """Every record on `topic`, parsed (a value that is not JSON is kept as its bytes)."""
    ends = await bus.end_offsets([topic])
    reader = bus.reader([topic], {tp: 0 for tp in ends})
    await reader.start()
    try:
        records = await read_to(reader, ends)
    finally:
        await reader.stop()
    out: list[Any] = []
    for record in records:
        try:
            out.append(orjson.loads(record.value))
        except orjson.JSONDecodeError:
            out.append(record.value)
    return out
