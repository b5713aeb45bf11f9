"""A consumer-group member kept running until told to stop, across bus failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

from hub.bus import Bus, BusError, CommitFailed, GroupConsumer, Message, Record

log = logging.getLogger(__name__)


async def commit_unit(
    consumer: GroupConsumer,
    batch: Sequence[Record],
    messages: Sequence[Message],
    what: str,
    generation: int | None = None,
) -> bool:
    """Send `messages` and commit `batch`'s offsets as one unit. False (and logged) when the
    group took the partitions meanwhile: nothing of the unit shows, the batch comes again.
    With `generation` (the consumer's when `batch` was fetched), a unit fetched before a
    rebalance does not commit either, even when the partitions came back to this member."""
    try:
        async with consumer.transaction(list(batch)) as txn:
            # Checked inside the unit: on Kafka a rebalance waits for the unit to end.
            if generation is not None and consumer.generation != generation:
                raise CommitFailed("the group rebalanced since the records were fetched")
            for message in messages:
                await txn.send(message)
    except CommitFailed as exc:
        log.info("%s not committed (%s); it will be done again", what, exc)
        return False
    return True


async def consume_until_stopped(
    bus: Bus,
    group: str,
    topics: Sequence[str],
    transactional_id: str,
    stopping: asyncio.Event,
    consume: Callable[[GroupConsumer], Awaitable[None]],
) -> None:
    """Run `consume` on a fresh group consumer until `stopping` is set.

    Nothing of the batch in hand was committed when the bus fails; a fresh consumer starts
    from the committed offsets, so that batch comes again once the bus is back.
    """
    while not stopping.is_set():
        consumer = bus.group_consumer(group, topics, transactional_id=transactional_id)
        try:
            await consumer.start()
            await consume(consumer)
        except BusError as exc:
            log.warning("%s consumer failed, starting a new one: %s", group, exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            with suppress(BusError):
                await consumer.stop()
