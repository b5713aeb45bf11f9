"""The keys topic as pipeline nodes keep it (hub.signing.keys_topic), on both buses: the
hub's JWKS and every member's keys at start, a rotation within the publisher's interval,
an empty set for a member that left the federation, and nothing written again by a node
that starts to find the topic as it would make it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.client.keys import MemberKey
from hub.bus import Bus, Record, read_to
from hub.bus.url import open_bus
from hub.demo import DEMO_ACCOUNTS_FILE, demo_federation
from hub.federation import Federation
from hub.records import KeysRecord
from hub.signing.keyring import KeyStore
from hub.signing.keys_topic import KeysPublisher
from hub.topics import Topics
from tests.hubs import with_member_key


@pytest.fixture
async def bus(bus_url: str, tmp_path: Path) -> AsyncIterator[Bus]:
    opened = open_bus(bus_url, tmp_path)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.stop()


async def records(bus: Bus, topics: Topics) -> list[Record]:
    reader = bus.reader([topics.keys], {})
    await reader.start()
    try:
        return await read_to(reader, await bus.end_offsets([topics.keys]))
    finally:
        await reader.stop()


async def latest(bus: Bus, topics: Topics) -> dict[str, list[dict[str, str]]]:
    found = (KeysRecord.from_record(r) for r in await records(bus, topics))
    return {k.name: list(k.jwks["keys"]) for k in found}


async def publishing(publisher: KeysPublisher, until: float = 0.5) -> None:
    """Run `publisher` for its start and `until` seconds more."""
    task = asyncio.create_task(publisher.run())
    await asyncio.sleep(until)
    publisher.stop()
    await task


async def test_the_keys_topic_follows_keys_dir_and_federation(
    bus: Bus, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    shutil.copy(demo_secrets, tmp_path / DEMO_ACCOUNTS_FILE)
    federation: Federation = with_member_key("ng-cert", MemberKey.generate())(
        demo_federation(tmp_path)[0]
    )
    members = [m.id for m in federation.members]
    topics = Topics(f"kt{unique}.")
    await bus.ensure_topics(topics.specs([], 1, members))
    store = KeyStore(tmp_path / "keys")
    first = store.ensure_key(None).kid

    await publishing(KeysPublisher(bus, topics, store, federation, interval=0.1))
    held = await latest(bus, topics)
    assert set(held) == {"hub", *(f"member-{m}" for m in members)}
    assert [(k["kid"], k["status"]) for k in held["hub"]] == [(first, "current")]
    assert [k["member"] for k in held["member-ng-cert"]] == ["ng-cert"]
    written = len(await records(bus, topics))

    # A node starting again with the same keys writes nothing; a rotation while it runs shows.
    publisher = KeysPublisher(bus, topics, store, federation, interval=0.1)
    task = asyncio.create_task(publisher.run())
    await asyncio.sleep(0.5)
    assert len(await records(bus, topics)) == written
    second = (await asyncio.to_thread(store.rotate, None)).kid
    await asyncio.sleep(1.0)
    publisher.stop()
    await task
    held = await latest(bus, topics)
    assert [(k["kid"], k["status"]) for k in held["hub"]] == [
        (second, "current"),
        (first, "retired"),
    ]
    # The rotation writes the new key, then retires the old one: a look in between
    # publishes that state too (the new key current already).
    rotated = len(await records(bus, topics))
    assert written < rotated <= written + 2

    # ng-cert leaves the federation: its keys are trusted no more.
    smaller = replace(federation, members=tuple(m for m in federation.members if m.id != "ng-cert"))
    await publishing(KeysPublisher(bus, topics, store, smaller, interval=0.1))
    held = await latest(bus, topics)
    assert held["member-ng-cert"] == []
    assert len(await records(bus, topics)) == rotated + 1
