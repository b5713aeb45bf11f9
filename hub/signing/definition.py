"""The provenance extension-definition in the `public` collection, signed like any object.

Published by a pipeline node when it starts, once per bus and topic prefix (remembered in
the node's data dir, like the view's positions), so feeds do not collect a copy per restart.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from hub.bus import Bus, Message
from hub.collections import PUBLIC
from hub.federation import Federation
from hub.pipeline.emit import STIX_MEDIA_TYPE, rfc3339_now
from hub.signing.provenance import HubSigner, Provenance, extension_definition
from hub.topics import Topics

MARKER_FILE = "published-definitions.json"


def definition_message(signer: HubSigner, federation: Federation, topics: Topics) -> Message:
    """The extension-definition, signed with the hub as submitter, for the public feed."""
    definition = extension_definition()
    provenance = Provenance(
        received=definition["modified"],
        submitter=federation.hub.id,
        policy_version=federation.policy_version,
    )
    signed = signer.sign(definition, provenance)
    headers = (
        ("content-type", STIX_MEDIA_TYPE),
        ("submitter", federation.hub.id.encode()),
        ("date-added", rfc3339_now().encode()),
    )
    return Message(topics.feed(PUBLIC), orjson.dumps(signed), signed["id"].encode(), headers)


async def publish_definition(
    bus: Bus,
    bus_url: str,
    signer: HubSigner,
    federation: Federation,
    topics: Topics,
    marker_dir: Path,
) -> bool:
    """Publish the definition unless this node already did on this bus; True if it did now."""
    definition = extension_definition()
    entry = f"{bus_url}|{topics.prefix}|{definition['id']}|{definition['modified']}"
    marker = marker_dir / MARKER_FILE
    done: list[str] = orjson.loads(marker.read_bytes()) if marker.exists() else []
    if entry in done:
        return False
    await bus.publish([definition_message(signer, federation, topics)])
    tmp = marker.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps([*done, entry]))
    tmp.replace(marker)
    return True
