"""The keys topic: the hub's JWKS and every member's public keys on the compacted
`<prefix>keys`, so that signatures can be checked from Kafka alone.

A pipeline node publishes at start what differs from what the topic holds, then looks at
the keys dir every few seconds: a rotation (`cirt-hub keys rotate`, from any node) shows
on the topic within that time, without a hook in the keyring. Records are keyed by name
(`hub`, `member-<id>`); a member no longer in the federation file gets an empty set, so a
reader that keeps the latest record per key trusts none of its keys any more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from hub.bus import Bus, read_to
from hub.federation import Federation, Member
from hub.records import HUB_KEYS, KeysRecord, member_keys_key
from hub.signing.keyring import KeyStore
from hub.topics import Topics

log = logging.getLogger(__name__)
JwkSet = Mapping[str, Any]


def member_jwks(member: Member) -> list[dict[str, Any]]:
    """The member's public keys as the hub trusts them, each naming member and identity."""
    return [
        {"use": "sig", "alg": "EdDSA", **jwk, "member": member.id, "identity": member.identity}
        for jwk in member.public_keys
    ]


@dataclass
class KeysPublisher:
    """Keeps the keys topic equal to the keys dir and the federation file."""

    bus: Bus
    topics: Topics
    store: KeyStore
    federation: Federation
    interval: float = 2.0  # how often the keys dir is looked at (a scandir)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _wanted(self, held: Mapping[str, JwkSet]) -> dict[str, JwkSet]:
        wanted: dict[str, JwkSet] = {}
        hub = self.store.jwks()
        if hub["keys"]:
            wanted[HUB_KEYS] = hub
        listed = {member_keys_key(m.id): m for m in self.federation.members}
        for name, member in listed.items():
            wanted[name] = {"keys": member_jwks(member)}
        for name in held:
            if name.startswith(member_keys_key("")) and name not in listed:
                wanted[name] = {"keys": []}  # left the federation: none of its keys holds
        return wanted

    async def run(self) -> None:
        """Publish what differs, at start and whenever the keys dir changes, until stop()."""
        topic = self.topics.keys
        reader = self.bus.reader([topic], {})
        await reader.start()
        try:
            held: dict[str, JwkSet] = {}
            for record in await read_to(reader, await self.bus.end_offsets([topic])):
                found = KeysRecord.from_record(record)
                held[found.name] = found.jwks
            while not self._stopping.is_set():
                # What other nodes published meanwhile (the same keys dir: the same sets).
                for record in await reader.fetch(timeout=0):
                    found = KeysRecord.from_record(record)
                    held[found.name] = found.jwks
                wanted = await asyncio.to_thread(self._wanted, held)
                changed = {n: s for n, s in wanted.items() if held.get(n) != s}
                if changed:
                    await self.bus.publish(
                        [KeysRecord(n, s).to_message(self.topics) for n, s in changed.items()]
                    )
                    held |= changed
                    log.info("keys topic: published %s", ", ".join(sorted(changed)))
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.interval)
        finally:
            await reader.stop()

    def stop(self) -> None:
        self._stopping.set()
