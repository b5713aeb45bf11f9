"""The objects every hub publishes unsigned in `public`: TLP definitions, the hub's extension.

Published by a pipeline node when it starts, once per bus and topic prefix (remembered in
the node's data dir, like the view's positions), so feeds do not collect a copy per restart.
What they are, and why they carry no signature: hub/stix/predefined.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hub.bus import Bus, Message
from hub.collections import PUBLIC
from hub.federation import Federation
from hub.records import FeedRecord
from hub.stix.predefined import predefined
from hub.stix.timestamps import rfc3339_now
from hub.topics import Topics

MARKER_FILE = "published-definitions.json"


def predefined_message(obj: dict[str, Any], federation: Federation, topics: Topics) -> Message:
    """One predefined object for the public feed, with the hub as submitter."""
    record = FeedRecord(
        collection=PUBLIC,
        object_id=obj["id"],
        value=orjson.dumps(obj),
        submitter=federation.hub.id,
        date_added=rfc3339_now(),
    )
    return record.to_message(topics)


def _entry(bus_url: str, topics: Topics, obj: dict[str, Any]) -> str:
    return f"{bus_url}|{topics.prefix}|{obj['id']}|{obj.get('modified') or obj['created']}"


async def publish_predefined(
    bus: Bus, bus_url: str, federation: Federation, topics: Topics, marker_dir: Path
) -> int:
    """Publish those this node has not yet published on this bus; how many it published now."""
    marker = marker_dir / MARKER_FILE
    done: list[str] = orjson.loads(marker.read_bytes()) if marker.exists() else []
    due = [obj for obj in predefined().values() if _entry(bus_url, topics, obj) not in done]
    if not due:
        return 0
    await bus.publish([predefined_message(obj, federation, topics) for obj in due])
    tmp = marker.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps([*done, *(_entry(bus_url, topics, obj) for obj in due)]))
    tmp.replace(marker)
    return len(due)
