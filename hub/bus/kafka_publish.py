"""Publishing to Kafka in transactions, so an answer of "not stored" is true.

A plain produce that times out is ambiguous: the broker may have written the record and
died before it acknowledged, and the record then shows up after the hub answered 503. Here
every publish is a transaction and every reader is `read_committed`: a publish that failed
or timed out is aborted (a fresh producer with the same transactional id fences the old
one), so what was refused never reaches a reader. Callers that arrive while a transaction
is open wait for the next one, which carries them all: one commit for many requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import aiokafka
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from hub.bus import Message, Position
from hub.bus.errors import BusUnavailable, MessageTooLarge

log = logging.getLogger(__name__)

_Waiter = tuple[Sequence[Message], "asyncio.Future[list[Position]]"]


class BoundedSends:
    """The sends of one transaction, with at most about `limit` bytes not yet acknowledged.

    aiokafka puts the next batch of every partition that has records waiting into one
    produce request, with no cap on the whole; a broker closes the connection on a request
    over its `socket.request.max.bytes` (100 MiB by default), the producer retries it as it
    was, and the transaction never commits: a pipeline unit of large objects routed to many
    feeds' partitions would stall the pipeline for everyone. Waiting for what is in flight
    before going over `limit` keeps every request within `limit`, or one record larger.
    """

    def __init__(self, producer: aiokafka.AIOKafkaProducer, limit: int) -> None:
        self._producer = producer
        self._limit = limit
        self._in_flight: list[asyncio.Future[Any]] = []
        self._bytes = 0

    async def send(self, m: Message) -> asyncio.Future[Any]:
        """Hand `m` to the producer; the future of its acknowledgement."""
        size = len(m.value) + len(m.key or b"")
        if self._in_flight and self._bytes + size > self._limit:
            await asyncio.gather(*self._in_flight)
            self._in_flight, self._bytes = [], 0
        future = await self._producer.send(
            m.topic, m.value, key=m.key, headers=list(m.headers) or None
        )
        self._in_flight.append(future)
        self._bytes += size
        sent: asyncio.Future[Any] = future
        return sent


class TransactionalPublisher:
    def __init__(self, options: dict[str, Any], max_message_bytes: int, timeout: float) -> None:
        self._options = options
        self._max = max_message_bytes
        self._timeout = timeout
        # One id for this process's life: a new producer after a failure fences the old one
        # at once, instead of the broker holding its open transaction until it times out.
        self._txn_id = f"{options.get('client_id', 'cirt-hub')}-publish-{uuid.uuid4().hex[:12]}"
        self._producer: aiokafka.AIOKafkaProducer | None = None
        self._waiting: list[_Waiter] = []
        self._worker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._starting = asyncio.Lock()

    async def publish(self, messages: Sequence[Message]) -> list[Position]:
        """Append `messages` durably and atomically (all or none); their positions."""
        for m in messages:
            if len(m.value) + len(m.key or b"") > self._max:
                raise MessageTooLarge(f"a record is over the bus limit of {self._max} bytes")
        done: asyncio.Future[list[Position]] = asyncio.get_running_loop().create_future()
        self._waiting.append((messages, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="kafka-publisher")
        return await done

    async def stop(self) -> None:
        if self._worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._worker), self._timeout)
        await self._drop_producer()
        if self._closing:
            await asyncio.wait(self._closing, timeout=10)

    async def _work(self) -> None:
        while self._waiting:
            group = [(m, f) for m, f in self._waiting if not f.done()]
            self._waiting = []
            if not group:
                continue
            try:
                async with asyncio.timeout(self._timeout):
                    positions = await self._commit([m for m, _ in group])
            except (KafkaError, TimeoutError, OSError) as exc:
                why = f"no commit in {self._timeout} s" if isinstance(exc, TimeoutError) else exc
                log.warning("Kafka publish failed, transaction aborted: %s", why)
                await self._drop_producer()
                self._fence_soon()
                error = (
                    MessageTooLarge(f"a record is over the bus limit: {exc}")
                    if isinstance(exc, MessageSizeTooLargeError)
                    else BusUnavailable(f"Kafka publish failed: {why}")
                )
                for _, f in group:
                    if not f.done():
                        f.set_exception(error)
                continue
            for (_, f), found in zip(group, positions, strict=True):
                if not f.done():
                    f.set_result(found)

    async def _commit(self, batches: list[Sequence[Message]]) -> list[list[Position]]:
        producer = await self._ensure_producer()
        # Not `async with producer.transaction()`: on failure it awaits an abort, which hangs
        # while the broker is gone. A failed transaction is left to the next producer with
        # this transactional id, whose start fences this one and aborts what it left open.
        await producer.begin_transaction()
        sends = BoundedSends(producer, self._max)
        sent = [[await sends.send(m) for m in batch] for batch in batches]
        results = [await asyncio.gather(*futures) for futures in sent]
        await producer.commit_transaction()
        return [[Position(r.topic, r.partition, r.offset) for r in batch] for batch in results]

    async def _ensure_producer(self) -> aiokafka.AIOKafkaProducer:
        async with self._starting:  # one producer per transactional id at a time
            return await self._start_producer()

    async def _start_producer(self) -> aiokafka.AIOKafkaProducer:
        if self._producer is None:
            producer = aiokafka.AIOKafkaProducer(
                transactional_id=self._txn_id,
                enable_idempotence=True,
                acks="all",
                max_request_size=self._max,
                # A publish's transaction lasts milliseconds; one left open (its producer
                # gone) must not hold read_committed readers back for long.
                transaction_timeout_ms=10_000,
                **self._options,
            )
            try:
                await producer.start()
            except BaseException:
                self._closing.add(task := asyncio.create_task(_quietly_stop(producer)))
                task.add_done_callback(self._closing.discard)
                raise
            self._producer = producer
        return self._producer

    def _fence_soon(self) -> None:
        """Start the next producer now, not at the next publish: its start fences the failed
        one and aborts its open transaction, which otherwise holds back read_committed
        readers of those partitions until the broker times it out."""

        async def fence() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await self._ensure_producer()

        self._closing.add(task := asyncio.create_task(fence()))
        task.add_done_callback(self._closing.discard)

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # Not awaited here: with the broker gone, stop() waits for its own timeouts, and
            # callers should hear "not stored" now. The next producer fences this one anyway.
            self._closing.add(task := asyncio.create_task(_quietly_stop(producer)))
            task.add_done_callback(self._closing.discard)


async def _quietly_stop(producer: aiokafka.AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 10)
