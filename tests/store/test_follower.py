"""The view follower's wake-ups: a live stream waiting for its collection must not miss a
batch the view applied while the stream was busy reading the view or writing events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson

from hub.bus import Message, TopicSpec
from hub.bus.embedded import EmbeddedBus
from hub.store.follower import ViewFollower
from hub.store.view import View
from tests.store.feeds import FEED, STATUS, indicator

OTHER = "cirt-hub.feed.region-east-africa"


def _message(topic: str) -> Message:
    obj = indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z")
    return Message(topic, orjson.dumps(obj), obj["id"].encode(), (("date-added", b""),))


async def test_a_batch_applied_before_the_wait_began_wakes_the_waiter_at_once(
    tmp_path: Path,
) -> None:
    bus = EmbeddedBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec(FEED), TopicSpec(OTHER), TopicSpec(STATUS)])
    view = View(
        tmp_path / "view.sqlite3",
        feeds={FEED: "region-west-africa", OTHER: "region-east-africa"},
        status_topic=STATUS,
    )
    await view.open()
    follower = ViewFollower(bus, view)
    running = asyncio.create_task(follower.run())
    stop = asyncio.Event()
    try:
        seen = follower.applied(FEED)
        await bus.publish([_message(FEED)])
        async with asyncio.timeout(10):
            while follower.applied(FEED) == seen:
                await asyncio.sleep(0.01)
        # The stream read the count, then the batch was applied (and its notification sent)
        # before the stream started waiting: the wait must end now, not at its 60 s timeout.
        async with asyncio.timeout(5):
            await follower.wait_for_change(FEED, seen, 60.0, stop)

        # A batch for another collection does not wake it; one for its own does.
        seen = follower.applied(FEED)
        waiting = asyncio.create_task(follower.wait_for_change(FEED, seen, 60.0, stop))
        await bus.publish([_message(OTHER)])
        async with asyncio.timeout(10):
            while follower.applied(OTHER) == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert not waiting.done(), "a batch for another collection woke the waiter"
        await bus.publish([_message(FEED)])
        async with asyncio.timeout(5):
            await waiting
        assert follower.applied(FEED) == seen + 1

        # Stopping ends a wait at once too.
        waiting = asyncio.create_task(
            follower.wait_for_change(FEED, follower.applied(FEED), 60.0, stop)
        )
        await asyncio.sleep(0.1)
        stop.set()
        async with asyncio.timeout(5):
            await waiting
    finally:
        follower.stop()
        await running
        await view.close()
        await bus.stop()
