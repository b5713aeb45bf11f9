"""Stopping an aiokafka consumer when the broker is gone, without a stray cancellation.

aiokafka's `AIOKafkaConsumer.stop()` cancels its in-flight fetches and awaits each one. A
fetch that failed and is sleeping out its retry back-off re-raises that CancelledError, so
stop() raises CancelledError although nobody cancelled the caller (aiokafka issue #647,
seen with 0.14.0 after a broker SIGKILL), and it leaves its other fetches and connections
open. Taken at face value it ends whatever task called stop(): a supervised runner would
stop for good instead of reconnecting.
"""

from __future__ import annotations

import asyncio
import logging

import aiokafka

from hub.cancellation import being_cancelled

log = logging.getLogger(__name__)


async def stop_consumer(consumer: aiokafka.AIOKafkaConsumer) -> None:
    """Stop `consumer`; a CancelledError that is not this task's own cancellation is absorbed
    and the close finished."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        if being_cancelled():
            raise
        log.warning("aiokafka consumer stop raised a stray CancelledError; finishing the close")
        await _finish_close(consumer)


async def _finish_close(consumer: aiokafka.AIOKafkaConsumer) -> None:
    # What stop() had left after the fetcher's first failed await: its other fetches and the
    # client's connections. Private attributes of the pinned aiokafka; a test stops a consumer
    # this way against a real broker, so an upgrade that moves them fails there.
    fetcher = consumer._fetcher
    pending = list(fetcher._pending_tasks) if fetcher is not None else []
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await consumer._client.close()
